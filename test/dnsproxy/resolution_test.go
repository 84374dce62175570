package dnsproxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

const nameLine = "80 svc.example.com"

// New connections follow the name once its TTL runs out, not before.
func TestDNSProxyFollowsTheTTL(t *testing.T) {
	r := newDNSRouter(t, nameLine)
	serveEcho(t, r.tp.Dest, "203.0.113.30:80", "203.0.113.31:80")
	r.dns.Set("svc.example.com", 2, netip.MustParseAddr("203.0.113.30"))
	r.start(t, []string{nameLine}).WaitReady(t)
	if dialled, _ := r.greeting(t, 80, false); dialled != "203.0.113.30" {
		t.Fatalf("reached %s, want 203.0.113.30", dialled)
	}
	changed := time.Now()
	r.dns.Set("svc.example.com", 2, netip.MustParseAddr("203.0.113.31"))
	if dialled, _ := r.greeting(t, 80, false); dialled != "203.0.113.30" && time.Since(changed) < time.Second {
		t.Fatalf("the answer changed before its 2s TTL ran out: reached %s", dialled)
	}
	wait.For(t, 10*time.Second, "the new address after the TTL", func() bool {
		dialled, _ := r.greeting(t, 80, false)
		return dialled == "203.0.113.31"
	})
	if took := time.Since(changed); took > 4*time.Second {
		t.Fatalf("took %s to follow a 2s TTL", took)
	}
}

// Connections are spread over every record; a record whose address refuses is stepped
// over, so no client sees the dead one.
func TestDNSProxySpreadsOverRecordsAndSkipsADeadAddress(t *testing.T) {
	r := newDNSRouter(t, nameLine)
	serveEcho(t, r.tp.Dest, "203.0.113.40:80", "203.0.113.41:80") // .42 refuses
	r.dns.Set("svc.example.com", 60, netip.MustParseAddr("203.0.113.40"), netip.MustParseAddr("203.0.113.41"), netip.MustParseAddr("203.0.113.42"))
	p := r.start(t, []string{nameLine})
	p.WaitReady(t)
	seen := map[string]int{}
	for range 12 {
		dialled, _ := r.greeting(t, 80, false)
		seen[dialled]++
	}
	if seen["203.0.113.40"] < 3 || seen["203.0.113.41"] < 3 || len(seen) != 2 {
		t.Fatalf("connections reached %v; want both live addresses, several times each", seen)
	}
	if got := p.Metric(t, `egress_dns_proxy_dial_errors_total{port="80"}`); got != 0 {
		t.Fatalf("dial_errors_total %v: a client was failed although live addresses remained", got)
	}
}

// With DNS down, the last answer keeps serving and the failures are counted.
func TestDNSProxyKeepsTheLastAnswerThroughADNSOutage(t *testing.T) {
	r := newDNSRouter(t, nameLine)
	serveEcho(t, r.tp.Dest, "203.0.113.30:80")
	r.dns.Set("svc.example.com", 1, netip.MustParseAddr("203.0.113.30"))
	p := r.start(t, []string{nameLine})
	p.WaitReady(t)
	r.greeting(t, 80, false)
	r.dns.SetDown(true)
	wait.For(t, 10*time.Second, "failed refreshes", func() bool {
		return p.Metric(t, `egress_dns_proxy_resolution_failures_total{port="80"}`) >= 2
	})
	if dialled, source := r.greeting(t, 80, false); dialled != "203.0.113.30" || source != "192.0.2.99" {
		t.Fatalf("during the outage: reached %s from %s", dialled, source)
	}
	if code, body := p.Get("/readyz"); code != http.StatusOK {
		t.Fatalf("not ready during the outage although the last answer serves: %d %s", code, body)
	}
}

// Started while DNS is down, the proxy serves health, is not ready, closes connections
// at once, and recovers when DNS answers.
func TestDNSProxyStartsWithDNSDownThenRecovers(t *testing.T) {
	r := newDNSRouter(t, nameLine)
	serveEcho(t, r.tp.Dest, "203.0.113.30:80")
	r.dns.SetDown(true)
	p := r.start(t, []string{nameLine})
	if code, _ := p.Get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d before any answer, want 503", code)
	}
	c, err := r.dialPod(80, false)
	if err != nil {
		t.Fatal(err)
	}
	if !c.closedAtOnce() {
		t.Fatal("a connection before any answer was not closed at once")
	}
	c.Close()
	r.dns.Set("svc.example.com", 60, netip.MustParseAddr("203.0.113.30"))
	r.dns.SetDown(false)
	wait.For(t, 10*time.Second, "readiness once DNS answers", func() bool { code, _ := p.Get("/readyz"); return code == http.StatusOK })
	if dialled, _ := r.greeting(t, 80, false); dialled != "203.0.113.30" {
		t.Fatalf("after recovery reached %s", dialled)
	}
}

// A name that starts resolving to a guarded address (loopback, cloud metadata) is
// refused and logged; connections keep going to the last good address, never to the
// guarded one, where a server in the pod waits to catch them.
func TestDNSProxyRefusesARebindToAGuardedAddress(t *testing.T) {
	line := "8000 svc.example.com 80" // the pod's own port 80 is the trap
	r := newDNSRouter(t, line)
	serveEcho(t, r.tp.Dest, "203.0.113.30:80")
	serveEcho(t, r.tp.Pod.NS, "127.0.0.1:80")
	r.dns.Set("svc.example.com", 1, netip.MustParseAddr("203.0.113.30"))
	p := r.start(t, []string{line})
	p.WaitReady(t)
	r.greeting(t, 8000, false)
	for _, rebind := range []string{"127.0.0.1", "169.254.169.254"} {
		r.dns.Set("svc.example.com", 1, netip.MustParseAddr(rebind))
		wait.For(t, 10*time.Second, "the rebind to be refused", func() bool {
			return strings.Contains(p.Logs.String(), `"address":"`+rebind+`"`)
		})
		for range 3 {
			if dialled, _ := r.greeting(t, 8000, false); dialled != "203.0.113.30" {
				t.Fatalf("after a rebind to %s a connection reached %s", rebind, dialled)
			}
		}
	}
	if !strings.Contains(p.Logs.String(), "resolved address refused") {
		t.Fatalf("the refusal is not logged:\n%s", p.Logs.String())
	}
}

// A name that starts resolving to one of the pod's own addresses (its cluster address,
// its reserved address) is refused like a guarded one: the forwarder would otherwise
// dial its own listener, each connection opening the next until every slot is taken.
func TestDNSProxyRefusesANameResolvingToThePodItself(t *testing.T) {
	line := "8100 svc.example.com 8100" // the line's own port: a loop if dialled
	r := newDNSRouter(t, line)
	serveEcho(t, r.tp.Dest, "203.0.113.30:8100")
	r.dns.Set("svc.example.com", 1, netip.MustParseAddr("203.0.113.30"))
	p := r.start(t, []string{line})
	p.WaitReady(t)
	r.greeting(t, 8100, false)
	for i, own := range []netip.Addr{r.tp.Pod.Addr.Addr(), topology.Reserved.Addr()} {
		r.dns.Set("svc.example.com", 1, own)
		wait.For(t, 10*time.Second, "the pod's own address to be refused", func() bool {
			return strings.Contains(p.Logs.String(), `"address":"`+own.String()+`"`)
		})
		if dialled, _ := r.greeting(t, 8100, false); dialled != "203.0.113.30" {
			t.Fatalf("after a rebind to %s a connection reached %s", own, dialled)
		}
		if got, want := p.Metric(t, `egress_dns_proxy_connections_total{port="8100"}`), float64(i+2); got != want {
			t.Fatalf("connections_total %v after %v client connections: the proxy dialled itself", got, want)
		}
	}
}

// A line naming one of the pod's own addresses as its IP literal means it: the refusal
// above is for names, whose owner may point them anywhere, not for what the
// configuration wrote.
func TestDNSProxyLineNamingAnAddressOfThePodReachesIt(t *testing.T) {
	own := topology.Reserved.Addr()
	line := fmt.Sprintf("8200 %s 8201", own)
	r := newDNSRouter(t, line)
	serveEcho(t, r.tp.Pod.NS, netip.AddrPortFrom(own, 8201).String())
	p := r.start(t, []string{line})
	p.WaitReady(t)
	if dialled, _ := r.greeting(t, 8200, false); dialled != own.String() {
		t.Fatalf("a line naming the pod's %s reached %q", own, dialled)
	}
}
