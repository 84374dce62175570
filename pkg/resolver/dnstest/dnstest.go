// Package dnstest is an in-process DNS server for tests: the test sets each name's
// records and TTL, and can take the server down (it stops answering, as an unreachable
// server does) and bring it back.
package dnstest

import (
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
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string]records{}, queries: map[string]int{}}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.answer)}
	started, failed := make(chan struct{}), make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-failed:
		t.Fatalf("dnstest: serve on %s: %v", s.Addr, err)
	case <-time.After(startTimeout):
		t.Fatalf("dnstest: not serving on %s after %s", s.Addr, startTimeout)
	}
	t.Cleanup(func() { srv.Shutdown() })
	return s
}

// Set gives name the addresses (A and AAAA as their family says) with ttl seconds;
// no addresses makes the name not exist.
func (s *Server) Set(name string, ttl uint32, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key(name)] = records{ttl, addrs}
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
	s.mu.Unlock()
	if down {
		return
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
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
	w.WriteMsg(resp)
}
