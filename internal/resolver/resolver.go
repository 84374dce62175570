// Package resolver looks up host names with their TTLs and keeps a name's addresses
// current at run time. The standard library hides TTLs, and a forwarder whose names
// move (cloud load balancers, failover records) must know when an answer expires, so
// queries are made with github.com/miekg/dns. Names are looked up as absolute names:
// no search list applies, as a forwarding line names one host.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ResolvConf is where the system's name servers are read when Resolver.Servers is empty.
const ResolvConf = "/etc/resolv.conf"

// Answer is the addresses a name has now and how long that answer may be kept.
type Answer struct {
	Addrs []netip.Addr // A records first, then AAAA, each as the server ordered them
	TTL   time.Duration
}

// Resolver queries name servers for A and AAAA records.
type Resolver struct {
	// Servers are "host:port" addresses tried in order; empty means the nameservers
	// of /etc/resolv.conf, re-read at every lookup so a changed file is followed.
	Servers []string
	// Timeout bounds one query to one server; zero means 2 seconds.
	Timeout time.Duration
}

// errNoAddresses is returned when the name exists but has neither A nor AAAA records.
var errNoAddresses = errors.New("no A or AAAA records")

// maxCNAMELinks bounds the CNAME chain followed from the name asked for, about where
// recursive resolvers give up too. Every answer's chain is followed through a map in
// steps of one link, so a hostile answer costs one pass over its records however it
// orders them, and no more than this many steps.
const maxCNAMELinks = 16

var errLongChain = fmt.Errorf("CNAME chain longer than %d links", maxCNAMELinks)

// Lookup returns the name's A and AAAA records, queried in parallel, with the smallest
// TTL among the records used (CNAMEs included). It succeeds if either family answers
// with addresses; a family with no records is not an error.
func (r *Resolver) Lookup(ctx context.Context, name string) (Answer, error) {
	servers, err := r.servers()
	if err != nil {
		return Answer{}, err
	}
	type result struct {
		rrs []dns.RR
		err error
	}
	var results [2]chan result
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		results[i] = make(chan result, 1)
		go func() {
			rrs, err := r.query(ctx, servers, name, qtype)
			results[i] <- result{rrs, err}
		}()
	}
	v4, v6 := <-results[0], <-results[1]
	answer, err := collect(name, v4.rrs, v6.rrs)
	switch {
	case err == nil:
		return answer, nil
	case errors.Is(err, errLongChain):
	case v4.err != nil:
		err = v4.err
	case v6.err != nil:
		err = v6.err
	}
	return Answer{}, fmt.Errorf("resolve %s: %w", name, err)
}

func (r *Resolver) servers() ([]string, error) {
	if len(r.Servers) > 0 {
		return r.Servers, nil
	}
	conf, err := dns.ClientConfigFromFile(ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("read name servers: %w", err)
	}
	if len(conf.Servers) == 0 {
		return nil, fmt.Errorf("read name servers: %s lists none", ResolvConf)
	}
	out := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		out[i] = net.JoinHostPort(s, conf.Port)
	}
	return out, nil
}

// query asks each server in turn until one gives a definite answer: records, "no such
// name" or "no records of this type". Server failures move on to the next server.
func (r *Resolver) query(ctx context.Context, servers []string, name string, qtype uint16) ([]dns.RR, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range servers {
		resp, err := exchange(ctx, m, server, timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", server, dns.TypeToString[qtype], err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			return resp.Answer, nil
		case dns.RcodeNameError:
			return nil, fmt.Errorf("%s: no such name", server)
		}
		errs = append(errs, fmt.Errorf("%s %s: server answered %s", server, dns.TypeToString[qtype], dns.RcodeToString[resp.Rcode]))
	}
	return nil, errors.Join(errs...)
}

// exchange sends m over UDP and repeats it over TCP when the answer was truncated.
func exchange(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	c := dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server)
	}
	return resp, err
}

// collect takes, from each answer (one per query), the addresses at the end of
// name's CNAME chain and the smallest TTL of the records on the way: the links
// followed and the addresses taken. Records of other owners (which a server should
// not send) are ignored rather than trusted. A chain longer than maxCNAMELinks, a
// loop included, fails the whole lookup.
func collect(name string, answers ...[]dns.RR) (Answer, error) {
	var (
		v4, v6 []netip.Addr
		minTTL = ^uint32(0)
	)
	for _, rrs := range answers {
		owner, ttl, err := chainEnd(name, rrs)
		if err != nil {
			return Answer{}, err
		}
		minTTL = min(minTTL, ttl)
		for _, rr := range rrs {
			h := rr.Header()
			var addr netip.Addr
			switch rec := rr.(type) {
			case *dns.A:
				addr, _ = netip.AddrFromSlice(rec.A.To4())
			case *dns.AAAA:
				// An IPv4-mapped AAAA record reaches an IPv4 address: it is that
				// address, for the rules and the guard alike, in both proxies.
				addr, _ = netip.AddrFromSlice(rec.AAAA.To16())
				addr = addr.Unmap()
			default:
				continue
			}
			if !strings.EqualFold(h.Name, owner) {
				continue
			}
			if addr.Is4() {
				v4 = appendNew(v4, addr)
			} else {
				v6 = appendNew(v6, addr)
			}
			minTTL = min(minTTL, h.Ttl)
		}
	}
	if len(v4)+len(v6) == 0 {
		return Answer{}, errNoAddresses
	}
	return Answer{Addrs: append(v4, v6...), TTL: time.Duration(minTTL) * time.Second}, nil
}

// chainEnd follows name's CNAME chain in rrs, listed in any order, through an
// owner-to-target map, and returns the (lowercase, absolute) name at its end with the
// smallest TTL of the links followed. An owner with two CNAMEs keeps the first.
func chainEnd(name string, rrs []dns.RR) (string, uint32, error) {
	type link struct {
		target string
		ttl    uint32
	}
	links := map[string]link{}
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok {
			owner := strings.ToLower(c.Hdr.Name)
			if _, seen := links[owner]; !seen {
				links[owner] = link{strings.ToLower(c.Target), c.Hdr.Ttl}
			}
		}
	}
	owner, minTTL := strings.ToLower(dns.Fqdn(name)), ^uint32(0)
	for n := 0; ; n++ {
		next, ok := links[owner]
		if !ok {
			return owner, minTTL, nil
		}
		if n == maxCNAMELinks {
			return "", 0, errLongChain
		}
		owner, minTTL = next.target, min(minTTL, next.ttl)
	}
}

func appendNew(list []netip.Addr, a netip.Addr) []netip.Addr {
	if !a.IsValid() || slices.Contains(list, a) {
		return list
	}
	return append(list, a)
}
