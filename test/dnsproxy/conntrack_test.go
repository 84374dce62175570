package dnsproxy

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/wait"
)

// The input guard turns conntrack on in the pod, which tracks every relayed connection
// twice (client side and destination side). ADD shortens the kernel's 120 s TIME_WAIT
// to 10 s, so the entries of closed connections go within seconds: at thousands of
// connections a second, 120 s filled the table and new connections were dropped.
func TestDNSProxyConntrackForgetsClosedConnectionsWithinSeconds(t *testing.T) {
	r := newDNSRouter(t, "80 203.0.113.25")
	serveEcho(t, r.tp.Dest, "203.0.113.25:80")
	r.start(t, []string{"80 203.0.113.25"})
	// conntrack -L lists the live entries and reaps expired ones (the kernel's count
	// drops only when its garbage collector, on its own schedule, gets to them).
	entries := func() int {
		out, err := r.tp.Exec(t, r.tp.Pod.NS, "conntrack", "-L", "-p", "tcp").Output()
		if err != nil {
			t.Fatalf("conntrack -L in the pod: %v: %s", err, out)
		}
		n := 0
		for line := range strings.Lines(out) {
			if strings.HasPrefix(line, "tcp ") {
				n++
			}
		}
		return n
	}
	const relayed = 100
	start := time.Now()
	for range relayed {
		c, err := r.dialPod(80, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.greeting(); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		if _, err := io.ReadAll(c.r); err != nil { // "bye" and the server's FIN
			t.Fatal(err)
		}
		c.Close()
	}
	if n := entries(); n < 2*relayed {
		t.Fatalf("%d conntrack entries in the pod after %d connections closed within %v; want each tracked on both sides", n, relayed, time.Since(start))
	}
	wait.For(t, 15*time.Second, "the closed connections' conntrack entries to expire", func() bool { return entries() < relayed/5 })
}
