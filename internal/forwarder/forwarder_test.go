package forwarder

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/internal/dnstable"
	"github.com/egress-router/egress-router/internal/resolver"
	"github.com/egress-router/egress-router/internal/resolver/dnstest"
	"github.com/egress-router/egress-router/test/serve"
)

// The package tests run on loopback: a line's IP literal names its address explicitly,
// so 127.0.0.1 destinations pass the guard. Each test listens on its own 127.x.y.z so
// the lines' fixed ports do not collide with other tests or programs.

func listenAddr() string {
	return fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(250), 1+rand.IntN(250))
}

// server accepts on 127.0.0.1 and answers each connection with who, the client
// address it saw, then echoes whatever it reads until the client's FIN.
func server(t *testing.T, who string) uint16 {
	t.Helper()
	return serve.Local(t, "127.0.0.1:0", func(c net.Conn) {
		fmt.Fprintf(c, "%s %s\n", who, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}).Port()
}

func cfg(t *testing.T, lines ...string) Rules {
	t.Helper()
	table, err := dnstable.Parse(lines)
	if err != nil {
		t.Fatal(err)
	}
	return Rules{Lines: table.Rules}
}

func start(t *testing.T, f *Forwarder, c Rules) {
	t.Helper()
	if f.ListenAddr == "" {
		f.ListenAddr = listenAddr()
	}
	if err := f.SetRules(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.Shutdown(ctx)
	})
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, f *Forwarder, port int) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(f.ListenAddr, fmt.Sprint(port)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

func (c *client) line(t *testing.T) string {
	t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimSpace(s)
}

// roundTrip sends msg and expects it echoed back.
func (c *client) roundTrip(t *testing.T, msg string) {
	t.Helper()
	fmt.Fprintln(c, msg)
	if got := c.line(t); got != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// closedAtOnce asserts the proxy ends the connection without relaying anything.
func (c *client) closedAtOnce(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("connection not closed at once: read %d bytes, %v", n, err)
	}
}

func TestRelaysEachLineToItsRemotePortFromTheSource(t *testing.T) {
	a, b := server(t, "a"), server(t, "b")
	c := cfg(t, fmt.Sprintf("7001 127.0.0.1 %d", a), fmt.Sprintf("7002 127.0.0.1 %d", b))
	c.Sources = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	f := &Forwarder{}
	start(t, f, c)
	for port, want := range map[int]string{7001: "a 127.0.0.2", 7002: "b 127.0.0.2"} {
		cl := dial(t, f, port)
		if got := cl.line(t); got != want {
			t.Fatalf("port %d: server said %q, want %q (its name and the reserved source)", port, got, want)
		}
		cl.roundTrip(t, "hello")
	}
}

func TestNameResolvingToLoopbackIsRefusedAndLogged(t *testing.T) {
	dns := dnstest.Start(t, nil)
	dns.Set("rebind.example.com", 60, netip.MustParseAddr("127.0.0.1"))
	f := &Forwarder{Resolver: &resolver.Resolver{Servers: []string{dns.Addr}}, Retry: 20 * time.Millisecond}
	start(t, f, cfg(t, fmt.Sprintf("7003 rebind.example.com %d", server(t, "x"))))
	// The refresh loop keeps failing, so the line never gets an address.
	for deadline := time.Now().Add(5 * time.Second); dns.Queries("rebind.example.com") < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no retries")
		}
	}
	dial(t, f, 7003).closedAtOnce(t)
	if f.Ready() == nil {
		t.Fatal("ready with a line whose only address is guarded")
	}
	if got := metric(t, f, "egress_dns_proxy_no_address_total"); got != 1 {
		t.Fatalf("no_address_total %v, want 1", got)
	}
}

func TestConnectionsBeforeTheFirstAnswerAreClosedAndReadyWaits(t *testing.T) {
	dns := dnstest.Start(t, nil)
	dns.SetDown(true)
	f := &Forwarder{Resolver: &resolver.Resolver{Servers: []string{dns.Addr}, Timeout: 50 * time.Millisecond}, Retry: 20 * time.Millisecond}
	start(t, f, cfg(t, fmt.Sprintf("7004 svc.example.com %d", server(t, "x"))))
	dial(t, f, 7004).closedAtOnce(t)
	if f.Ready() == nil {
		t.Fatal("ready before the name resolved")
	}
	// A name cannot reach the loopback server (the guard), so readiness is the signal.
	dns.Set("svc.example.com", 60, netip.MustParseAddr("203.0.113.7"))
	dns.SetDown(false)
	for deadline := time.Now().Add(5 * time.Second); f.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after DNS came back: %v", f.Ready())
		}
	}
}

// metric returns the value of the named metric's first sample (the first line's).
func metric(t *testing.T, f *Forwarder, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
