package forwarder

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/egress-router/egress-router/pkg/connlimit"
	"github.com/egress-router/egress-router/pkg/guard"
	"github.com/egress-router/egress-router/pkg/resolver"
	"github.com/egress-router/egress-router/pkg/resolver/dnstest"
)

// ownAddress returns an address of this host that the guard lets through (not
// loopback or link-local), as a pod's eth0 or net1 address is.
func ownAddress(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifa := range addrs {
		if n, ok := ifa.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() && guard.Check(a.Unmap()) == nil {
				return a.Unmap()
			}
		}
	}
	t.Skip("no address of this host outside the guarded ranges")
	return netip.Addr{}
}

// A name resolving to the proxy's own address would have each connection dial the
// line's own listener, which dials it again, until every connection slot is taken.
func TestNameResolvingToAnAddressOfThePodIsRefused(t *testing.T) {
	own := ownAddress(t)
	dns := dnstest.Start(t, nil)
	dns.Set("self.example.com", 60, own)
	f := &Forwarder{
		ListenAddr: own.String(),
		Resolver:   &resolver.Resolver{Servers: []string{dns.Addr}},
		Retry:      20 * time.Millisecond,
		Limiter:    &connlimit.Limiter{Max: 50},
	}
	start(t, f, cfg(t, "7201 self.example.com 7201"))
	eventually(t, "the first lookup", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		dest := f.lines[7201].configured.dest
		return dest.Failures() > 0 || !dest.Updated().IsZero()
	})
	dial(t, f, 7201).closedAtOnce(t)
	if got := metric(t, f, "egress_dns_proxy_connections_total"); got != 1 {
		t.Fatalf("one client connection made %v connections to the line", got)
	}
	if f.Ready() == nil {
		t.Fatal("ready with a line whose only address is the pod's own")
	}
}

// A line naming an address of the pod as its IP literal means it.
func TestLineNamingAnAddressOfThePodReachesIt(t *testing.T) {
	own := ownAddress(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(own.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			fmt.Fprintln(c, "here")
			c.Close()
		}
	}()
	f := &Forwarder{}
	start(t, f, cfg(t, fmt.Sprintf("7202 %s %d", own, ln.Addr().(*net.TCPAddr).Port)))
	if got := dial(t, f, 7202).line(t); got != "here" {
		t.Fatalf("got %q", got)
	}
}
