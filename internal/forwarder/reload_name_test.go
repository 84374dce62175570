package forwarder

import (
	"net/netip"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/resolver"
	"github.com/egress-router/egress-router/internal/resolver/dnstest"
	"github.com/egress-router/egress-router/test/wait"
)

// A reload to a new name keeps the old destination serving until the new name
// answers: the line neither closes connections nor turns unready meanwhile. The names
// resolve to a documentation address (the guard keeps names off loopback), so which
// destination serves is seen through readiness, the counters and the DNS queries.
func TestReloadToANewNameKeepsTheOldDestinationUntilTheNewOneAnswers(t *testing.T) {
	dns := dnstest.Start(t, nil)
	dns.Set("old.example.com", 0, netip.MustParseAddr("203.0.113.7"))
	f := &Forwarder{
		Resolver:    &resolver.Resolver{Servers: []string{dns.Addr}, Timeout: 50 * time.Millisecond},
		TTLFloor:    20 * time.Millisecond,
		Retry:       20 * time.Millisecond,
		DialTimeout: 100 * time.Millisecond,
	}
	start(t, f, cfg(t, "7211 old.example.com 9"))
	wait.For(t, 5*time.Second, "the old name to resolve", func() bool { return f.Ready() == nil })

	if err := f.SetRules(cfg(t, "7211 new.example.com 9")); err != nil {
		t.Fatal(err)
	}
	if err := f.Ready(); err != nil {
		t.Fatalf("not ready right after a reload to a name that has not answered: %v", err)
	}
	dial(t, f, 7211).closedAtOnce(t) // 203.0.113.7 does not answer: a dial error
	if got := metric(t, f, "egress_dns_proxy_no_address_total"); got != 0 {
		t.Fatalf("a connection found no address while the old destination could serve")
	}

	dns.Set("new.example.com", 60, netip.MustParseAddr("203.0.113.8"))
	wait.For(t, 5*time.Second, "the new name to serve", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.lines[7211].serving.Load().rule.Host.Name == "new.example.com"
	})
	stopped := dns.Queries("old.example.com")
	time.Sleep(100 * time.Millisecond) // five of the old name's 20ms refreshes
	if q := dns.Queries("old.example.com"); q > stopped+2 {
		t.Fatalf("the old name is still resolved once replaced (%d more queries)", q-stopped)
	}
}
