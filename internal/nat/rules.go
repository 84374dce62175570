package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/egress-router/egress-router/internal/redirect"
)

// chain is where a rule sits; each backend maps it to its own table and chain names.
type chain uint8

const (
	prerouting  chain = iota + 1 // nat, before routing: DNAT
	postrouting                  // nat, after routing: SNAT
	forward                      // filter, forwarded packets
	input                        // filter, packets for the pod itself
)

// chains lists every chain an attachment can own, in the order they are written. An
// attachment owns those its rules use: the proxy modes need no NAT or forward hook.
var chains = []chain{prerouting, postrouting, forward, input}

var chainNames = map[chain]string{prerouting: "prerouting", postrouting: "postrouting", forward: "forward", input: "input"}

func (c chain) String() string { return chainNames[c] }

// usedChains lists the chains that hold at least one of rules, in chains' order.
func usedChains(rules []rule) []chain {
	return slices.DeleteFunc(slices.Clone(chains), func(c chain) bool {
		return !slices.ContainsFunc(rules, func(r rule) bool { return r.chain == c })
	})
}

// family is the IP version a rule applies to; anyFamily only appears on live rules
// that lack a family match (every rule egress-router writes has one).
type family uint8

const (
	anyFamily family = 0
	ipv4      family = 4
	ipv6      family = 6
)

// families lists the IP versions in the order rules are written.
var families = []family{ipv4, ipv6}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

func (f family) String() string {
	switch f {
	case ipv4:
		return "IPv4"
	case ipv6:
		return "IPv6"
	}
	return "IPv4 and IPv6"
}

// ctMatch is the connection-tracking condition of a rule.
type ctMatch uint8

const (
	ctAny         ctMatch = iota
	ctEstablished         // established or related
	ctDNAT                // the connection was DNATed
	ctNotDNAT             // the connection was not DNATed
	ctNew                 // the packet opens a connection
)

// verdict is what a rule does with the packets it matches.
type verdict uint8

const (
	accept verdict = iota + 1
	drop
	dnat
	snat
)

// rule is one packet rule in backend-neutral form. Ruleset.rules builds the wanted
// list once; each backend renders it and reads its live state back into the same
// form, so wanted and live compare as plain values (see diff).
type rule struct {
	chain  chain
	family family
	in     string         // matches packets that arrived on this interface
	notIn  string         // matches packets that did not arrive on this interface
	out    string         // matches packets leaving on this interface
	proto  redirect.Proto // "" matches every protocol
	dport  uint16         // 0 matches every port
	ct     ctMatch
	action verdict
	to     netip.AddrPort // dnat/snat: the new address; port 0 keeps the packet's port
	// unknown holds the backend's own text of a live rule it could not read back.
	unknown string
}

// guarded are the protocols whose new connections the input guard drops. ICMP stays
// open: neighbour discovery and path MTU discovery need it, and a ping of the
// reserved address opens nothing.
var guarded = []redirect.Proto{redirect.TCP, redirect.UDP, redirect.SCTP}

// rules is everything rs programs, per family and per chain in evaluation order:
//
//	prerouting   one DNAT per redirect rule, then the fallback DNAT
//	postrouting  SNAT to the family's source for packets leaving on Egress
//	forward      accept established/related; accept DNATed flows leaving on Egress;
//	             drop every other flow no rule redirected
//	input        drop tcp, udp and sctp packets arriving on Egress that open a
//	             connection
//
// Only families with a source get rules, and only a ruleset that redirects something
// gets the first three chains; the proxy modes get the input guard alone. The forward
// drop matches "not DNATed" rather than "everything", so that the forward chains of
// several attachments in one netns each accept their own flows and none drops
// another's (a drop in any nftables base chain is final). Nothing is forwarded that
// some DNAT rule did not send, so the pod is never an open router.
//
// The input guard is there because the router only sends: a host on the node network
// that opened a connection to the reserved address would reach the proxies (which
// listen on every address) or the pod's own services, and leave from the whitelisted
// address. Replies to the pod's own connections are established, so they pass.
func (rs Ruleset) rules() ([]rule, error) {
	if rs.Egress == "" {
		return nil, errors.New("no egress interface")
	}
	sources := map[family]netip.Addr{}
	for _, s := range rs.SourcePerFamily {
		if !s.IsValid() {
			return nil, errors.New("invalid source address")
		}
		s = s.Unmap()
		if prev, dup := sources[familyOf(s)]; dup {
			return nil, fmt.Errorf("two %s source addresses, %s and %s", familyOf(s), prev, s)
		}
		sources[familyOf(s)] = s
	}
	// Config validation guarantees a source per target family; say so if not.
	for _, t := range rs.Redirect.Targets() {
		if _, ok := sources[familyOf(t.Unmap())]; !ok {
			return nil, fmt.Errorf("no %s source address for destination %s", familyOf(t.Unmap()), t)
		}
	}
	redirects := len(rs.Redirect.Targets()) > 0
	var out []rule
	for _, f := range families {
		src, ok := sources[f]
		if !ok {
			continue
		}
		if redirects {
			out = append(out, rs.redirectRules(f, src)...)
		}
		for _, p := range guarded {
			out = append(out, rule{chain: input, family: f, in: rs.Egress, proto: p, ct: ctNew, action: drop})
		}
	}
	return out, nil
}

// redirectRules is family f's share of the DNAT, SNAT and forward rules, with src its
// source address.
func (rs Ruleset) redirectRules(f family, src netip.Addr) []rule {
	var out []rule
	for _, r := range rs.Redirect.Rules {
		if familyOf(r.Target.Unmap()) != f {
			continue
		}
		out = append(out, rule{chain: prerouting, family: f, notIn: rs.Egress, proto: r.Proto, dport: r.Port,
			action: dnat, to: netip.AddrPortFrom(r.Target.Unmap(), r.TargetPort)})
	}
	if fb := rs.Redirect.Fallback.Unmap(); fb.IsValid() && familyOf(fb) == f {
		out = append(out, rule{chain: prerouting, family: f, notIn: rs.Egress, action: dnat, to: netip.AddrPortFrom(fb, 0)})
	}
	return append(out,
		rule{chain: postrouting, family: f, out: rs.Egress, action: snat, to: netip.AddrPortFrom(src, 0)},
		rule{chain: forward, family: f, ct: ctEstablished, action: accept},
		rule{chain: forward, family: f, out: rs.Egress, ct: ctDNAT, action: accept},
		rule{chain: forward, family: f, ct: ctNotDNAT, action: drop},
	)
}

// key is the rule without the attributes diff reports as changed in place.
func (r rule) key() rule {
	r.in, r.notIn, r.out, r.to = "", "", "", netip.AddrPort{}
	return r
}

// String describes the rule in the words drift messages use, e.g.
// "DNAT rule for 80/tcp -> 203.0.113.25:80" or "input drop rule for IPv4 tcp new on
// net1".
func (r rule) String() string {
	if r.unknown != "" {
		return fmt.Sprintf("rule in %s not written by egress-router: %s", r.chain, r.unknown)
	}
	s := r.actionName() + " rule for " + r.subject()
	if r.action == dnat || r.action == snat {
		s += " -> " + formatTarget(r.to)
	}
	if r.in != "" {
		s += " on " + r.in
	}
	return s
}

func (r rule) actionName() string {
	switch r.action {
	case dnat:
		return "DNAT"
	case snat:
		return "SNAT"
	case accept:
		return r.chain.String() + " accept"
	}
	return r.chain.String() + " drop"
}

// subject says which packets the rule matches, interfaces aside: "80/tcp",
// "IPv4 tcp new", "IPv4 traffic", "IPv6 established,related traffic". A port rule's
// target names its family; a protocol alone does not.
func (r rule) subject() string {
	if r.proto != "" {
		s := r.family.String() + " " + string(r.proto)
		if r.dport != 0 {
			s = strconv.Itoa(int(r.dport)) + "/" + string(r.proto)
		}
		if r.ct == ctAny {
			return s
		}
		return s + " " + r.ct.String()
	}
	if r.ct == ctAny {
		return r.family.String() + " traffic"
	}
	return r.family.String() + " " + r.ct.String() + " traffic"
}

func (c ctMatch) String() string {
	switch c {
	case ctEstablished:
		return "established,related"
	case ctDNAT:
		return "DNATed"
	case ctNotDNAT:
		return "not DNATed"
	case ctNew:
		return "new"
	}
	return ""
}

// formatTarget renders a NAT target; port 0 means the port is kept.
func formatTarget(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// setOnce sets *field to v, or reports false when the field was already set: a
// second match on the same field is not something egress-router writes.
func setOnce[T comparable](field *T, v T) bool {
	var zero T
	if *field != zero {
		return false
	}
	*field = v
	return true
}
