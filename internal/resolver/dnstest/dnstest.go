// Package dnstest is an in-process DNS server for tests: the test sets each name's
// records and TTL, or a CNAME chain for a name, and can take the server down (it
// stops answering, as an unreachable server does) and bring it back.
package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startTimeout bounds how long Start waits for the server to come up.
const startTimeout = 5 * time.Second

// Server answers A and AAAA queries from records the test sets.
type Server struct {
	// Addr is the "host:port" the server listens on.
	Addr string

	mu      sync.Mutex
	records map[string]records
	chains  map[string][]dns.RR
	down    bool
	queries map[string]int
}

type records struct {
	ttl   uint32
	addrs []netip.Addr
}

// Start serves on pc, or on a new UDP socket on 127.0.0.1 when pc is nil (a test that
// needs the server inside a network namespace opens pc there). It stops at cleanup.
func Start(t testing.TB, pc net.PacketConn) *Server {
	t.Helper()
	if pc == nil {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatalf("dnstest: %v", err)
		}
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string]records{}, chains: map[string][]dns.RR{}, queries: map[string]int{}}
	serve(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.answer)}, s.Addr)
	return s
}

// StartWithTCP serves on UDP and TCP on one port of 127.0.0.1, as a client that
// repeats a truncated query over TCP expects. The TCP port is taken first and the UDP
// socket bound to the same number; that number may be taken for UDP by another test
// process (binding UDP first failed that way: "address already in use" for TCP), so it
// tries a few.
func StartWithTCP(t testing.TB) *Server {
	t.Helper()
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			lastErr = err
			continue
		}
		s := Start(t, pc)
		serve(t, &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.answer)}, s.Addr)
		return s
	}
	t.Fatalf("dnstest: no port free for both UDP and TCP: %v", lastErr)
	return nil
}

// serve starts srv and waits until it serves; it stops at cleanup.
func serve(t testing.TB, srv *dns.Server, addr string) {
	t.Helper()
	started, failed := make(chan struct{}), make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-failed:
		t.Fatalf("dnstest: serve on %s: %v", addr, err)
	case <-time.After(startTimeout):
		t.Fatalf("dnstest: not serving on %s after %s", addr, startTimeout)
	}
	t.Cleanup(func() { srv.Shutdown() })
}

// Set gives name the addresses (A and AAAA as their family says) with ttl seconds;
// no addresses makes the name not exist.
func (s *Server) Set(name string, ttl uint32, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key(name)] = records{ttl, addrs}
}

// SetChain makes name a chain of links CNAMEs ending in an A or AAAA record for
// addr, every query for it answered with the whole chain listed backwards (the
// address first, then the last link, ..., the first): an order no zone server uses,
// and the one that costs a resolver most to follow. Link i has the TTL 100+i. Over
// UDP an answer larger than the client's buffer is truncated, as servers do, so a
// client asks again over TCP (StartWithTCP).
func (s *Server) SetChain(name string, links int, addr netip.Addr) {
	owner := func(i int) string {
		if i == 0 {
			return dns.Fqdn(name)
		}
		return fmt.Sprintf("n%d.chain.example.", i)
	}
	var end dns.RR = &dns.A{Hdr: dns.RR_Header{Name: owner(links), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: addr.AsSlice()}
	if addr.Is6() {
		end = &dns.AAAA{Hdr: dns.RR_Header{Name: owner(links), Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 300}, AAAA: addr.AsSlice()}
	}
	rrs := []dns.RR{end}
	for i := links - 1; i >= 0; i-- {
		hdr := dns.RR_Header{Name: owner(i), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: uint32(100 + i)}
		rrs = append(rrs, &dns.CNAME{Hdr: hdr, Target: owner(i + 1)})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chains[key(name)] = rrs
}

// SetDown makes the server stop answering (true) or answer again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Queries is how many queries for name (either type) the server has received.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name)]
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func (s *Server) answer(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	s.mu.Lock()
	s.queries[key(q.Name)]++
	down, rec, known := s.down, s.records[key(q.Name)], len(s.records[key(q.Name)].addrs) > 0
	chain, chained := s.chains[key(q.Name)]
	s.mu.Unlock()
	if down {
		return
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	if chained {
		resp.Answer = chain
		write(w, req, resp)
		return
	}
	if !known {
		resp.Rcode = dns.RcodeNameError
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: rec.ttl}
	for _, a := range rec.addrs {
		switch {
		case a.Is4() && q.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case a.Is6() && q.Qtype == dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	write(w, req, resp)
}

// write sends resp compressed, as servers do, and truncated over UDP to the size the
// client's EDNS record offers (512 bytes without one).
func write(w dns.ResponseWriter, req, resp *dns.Msg) {
	resp.Compress = true
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}
