package dnsproxy

import (
	"strings"
	"testing"
	"time"
)

// A destination that drops the SYNs (a blackhole route in the gateway namespace): the
// client is closed after the dial timeout, neither before nor long after, and the
// failure is counted and logged; one that refuses closes the client at once, counted
// and logged the same way.
func TestDNSProxyClosesTheClientAfterTheDialTimeoutOrARefusal(t *testing.T) {
	lines := []string{"80 203.0.113.77", "81 203.0.113.78"}
	r := newDNSRouter(t, lines...)
	r.tp.Exec(t, r.tp.Gateway, "ip", "route", "add", "blackhole", "203.0.113.77/32").Run(t)
	const timeout = 500 * time.Millisecond
	p := r.start(t, lines, "-dial-timeout", timeout.String())
	p.WaitReady(t)

	// Timed from before the connect: the proxy's dial timer starts at its accept, which
	// can come before the client's connect returns.
	began := time.Now()
	c, err := r.dialPod(80, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("client of the blackholed line: read %d, %v; want it closed", n, err)
	}
	if took := time.Since(began); took < timeout || took > 3*timeout {
		t.Fatalf("client closed after %s, want the %s dial timeout", took, timeout)
	}
	p.WaitUntil(t, 5*time.Second, "the timeout counted", func() bool {
		return p.Metric(t, `egress_dns_proxy_dial_errors_total{port="80"}`) == 1
	})

	refused, err := r.dialPod(81, false)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	if !refused.closedAtOnce() {
		t.Fatal("client of the refusing line not closed at once")
	}
	p.WaitUntil(t, 5*time.Second, "the refusal counted", func() bool {
		return p.Metric(t, `egress_dns_proxy_dial_errors_total{port="81"}`) == 1
	})
	p.WaitUntil(t, 5*time.Second, "both failures logged", func() bool {
		logs := p.Logs.String()
		return strings.Count(logs, "cannot reach the destination") == 2 &&
			strings.Contains(logs, "i/o timeout") && strings.Contains(logs, "connection refused")
	})
	if got := p.Metric(t, `egress_dns_proxy_connections_active{port="80"}`); got != 0 {
		t.Fatalf("connections_active %v after the failures, want 0", got)
	}
}
