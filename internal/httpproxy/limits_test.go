package httpproxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/test/wait"
)

// A client over its connection cap is closed at once; others still get through
// (security.md item 8).
func TestPerClientConnectionCap(t *testing.T) {
	p := startProxy(t, "127.0.0.2", nil)
	p.listener.Close() // serve again on a listener with a cap of one per client
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	capped := &connlimit.Listener{TCPListener: ln.(*net.TCPListener), Limiter: &connlimit.Limiter{PerClient: 1},
		Rejected: func(netip.Addr) { p.Metrics.Rejected.Inc() }}
	go p.Serve(capped)
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	wait.For(t, 3*time.Second, "the first connection served", func() bool { return value(p.Metrics.ActiveConnections) == 1 })
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("second connection from the same client: %v; want it closed", err)
	}
	// The listener counts the rejection after closing the connection.
	wait.For(t, 3*time.Second, "the rejection counted", func() bool { return value(p.Metrics.Rejected) == 1 })
}

// A panic while serving one connection closes that connection only; it is counted
// and logged, and the proxy keeps serving (security.md item 8).
func TestPanicIsContainedToItsConnection(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	dns := newDNS(map[string]string{"ok.example.com": "127.0.0.2"})
	p := startProxy(t, "*.example.com\n"+liftLoopback, nil, func(s *Server) {
		s.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			if host == "boom.example.com" {
				panic("resolver bug")
			}
			return dns.resolve(ctx, host)
		}
	})
	if got := p.exchange(t, "GET http://boom.example.com/ HTTP/1.1\r\n\r\n"); got != "" {
		t.Fatalf("answer after a panic: %q", got)
	}
	if status, _ := p.get(t, "http://ok.example.com:"+o.port()+"/"); status != 200 {
		t.Fatalf("after a panic: status %d", status)
	}
	if got := value(p.Metrics.Panics); got != 1 {
		t.Fatalf("panics = %v", got)
	}
	if !strings.Contains(p.logs.String(), "resolver bug") {
		t.Fatal("panic not logged")
	}
}

// Decisions are logged one line each, up to the rate limit; the rest are counted.
func TestDecisionLogIsRateLimited(t *testing.T) {
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.DecisionLogsPerSecond = 2 })
	for range 6 {
		p.exchange(t, "GET http://denied.example.org/ HTTP/1.1\r\n\r\n")
	}
	time.Sleep(1100 * time.Millisecond)
	p.exchange(t, "GET http://denied.example.org/ HTTP/1.1\r\n\r\n")
	logs := p.logs.String()
	lines := strings.Count(logs, `"msg":"decision"`)
	if lines < 3 || lines > 5 {
		t.Fatalf("%d decision lines for 7 decisions at 2 a second:\n%s", lines, logs)
	}
	if !strings.Contains(logs, "suppressed") {
		t.Fatalf("suppressed lines not reported:\n%s", logs)
	}
	if !strings.Contains(logs, `"target":"denied.example.org:80"`) || !strings.Contains(logs, `"decision":"deny"`) {
		t.Fatalf("decision line lacks the target or decision:\n%s", logs)
	}
}

// A keep-alive connection with no request for the idle timeout is closed without a
// word, empty lines between requests included.
func TestIdleConnectionIsClosed(t *testing.T) {
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.IdleTimeout, s.HeaderTimeout = 200*time.Millisecond, 200*time.Millisecond })
	for _, sent := range []string{"", "\r\n"} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, sent)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		if got, err := io.ReadAll(c); err != nil || len(got) != 0 || time.Since(start) > 2*time.Second {
			t.Fatalf("idle connection after %q: %q %v after %v", sent, got, err, time.Since(start))
		}
	}
}

// A Server with its timeouts and head cap left zero uses the defaults: requests with
// heads of ordinary size get through rather than timing out or getting 431.
func TestZeroValueServerUsesDefaults(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) {
		s.DialTimeout, s.HeaderTimeout, s.IdleTimeout, s.UpstreamTimeout, s.MaxHeaderBytes = 0, 0, 0, 0, 0
	})
	raw := "GET http://127.0.0.2:" + o.port() + "/ HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 8<<10) + "\r\nConnection: close\r\n\r\n"
	if got := p.exchange(t, raw); statusOf(got) != 200 {
		t.Fatalf("answer %.200q, want 200", got)
	}
}
