package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/test/serve"
	"github.com/egress-router/egress-router/test/wait"
)

// echoServer echoes every connection on addr and returns its port.
func echoServer(t testing.TB, addr string) (port uint16, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- struct{}{}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port), ch
}

// connect opens a tunnel by hand and returns the connection after the proxy's answer.
func connect(t testing.TB, p *proxy, target, early string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"+early)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return c, br, 0
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
	}
	return c, br, resp.StatusCode
}

// HTTPS through CONNECT with Go's client; the TLS server sees the handshake intact.
func TestHTTPSThroughConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the test certificate's address
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure hello") }))
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	port, _ := strconv.Atoi(strings.Split(ln.Addr().String(), ":")[1])
	p := startProxy(t, "127.0.0.1", nil, func(s *Server) { s.ConnectPorts = []uint16{uint16(port)} })
	proxyURL, _ := url.Parse("http://" + p.addr)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(proxyURL)
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "secure hello" {
		t.Fatalf("body %q", body)
	}
	if got := value(p.Metrics.Tunnels.WithLabelValues("allow", "1")); got != 1 {
		t.Fatalf("tunnels{allow,1} = %v", got)
	}
}

// Bytes the client sends right behind its CONNECT head (before the 200) are passed on
// (security.md item 4).
func TestBytesSentBeforeTheConnectAnswerArePassedOn(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.2:0")
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.ConnectPorts = []uint16{port} })
	c, br, status := connect(t, p, fmt.Sprintf("127.0.0.2:%d", port), "early bytes")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	buf := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "early bytes" {
		t.Fatalf("echo %q %v", buf, err)
	}
	io.WriteString(c, "later")
	buf = buf[:5]
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "later" {
		t.Fatalf("echo %q %v", buf, err)
	}
	c.Close()
	wait.For(t, 3*time.Second, "bytes counted", func() bool {
		return value(p.Metrics.Bytes.WithLabelValues("sent")) == 16 && value(p.Metrics.Bytes.WithLabelValues("received")) == 16
	})
}

// A refused CONNECT gets 403 and the connection ends: a request smuggled behind it is
// never read (security.md item 4).
func TestRefusedConnectClosesWithoutReadingEarlyBytes(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	port, accepted := echoServer(t, "127.0.0.3:0")
	p := startProxy(t, "127.0.0.2\n127.0.0.3", nil) // CONNECT: port 443 only
	smuggled := "GET http://127.0.0.2:" + o.port() + "/ HTTP/1.1\r\n\r\n"
	for _, target := range []string{
		fmt.Sprintf("127.0.0.3:%d", port), // a port CONNECT may not reach
		"127.0.0.9:443",                   // a destination no rule allows
		"127.0.0.3",                       // no port
	} {
		c, br, status := connect(t, p, target, smuggled)
		if status != 403 && status != 400 {
			t.Fatalf("CONNECT %s: status %d", target, status)
		}
		rest, _ := io.ReadAll(br)
		c.Close()
		if len(rest) != 0 {
			t.Fatalf("CONNECT %s: more after the refusal: %q", target, rest)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(o.received()); n != 0 {
		t.Fatalf("the smuggled request reached the origin %d times", n)
	}
	select {
	case <-accepted:
		t.Fatal("a refused CONNECT reached its destination")
	default:
	}
}

// A reload applies to new tunnels and requests at once; an open tunnel carries on.
func TestReloadKeepsOpenTunnelsAndAppliesToNewOnes(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.2:0")
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.ConnectPorts = []uint16{port} })
	target := fmt.Sprintf("127.0.0.2:%d", port)
	c, br, status := connect(t, p, target, "")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	p.SetRules(Rules{Policy: mustPolicy(t, "127.0.0.3")})
	if _, _, status := connect(t, p, target, ""); status != 403 {
		t.Fatalf("new tunnel after reload: status %d, want 403", status)
	}
	io.WriteString(c, "still here")
	buf := make([]byte, 10)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("open tunnel after reload: %q %v", buf, err)
	}
}

// Shutdown closes connections waiting for a request at once, lets a tunnel run until
// the grace period ends, then closes it.
func TestShutdownDrainsThenCloses(t *testing.T) {
	port, _ := echoServer(t, "127.0.0.2:0")
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.ConnectPorts = []uint16{port} })
	idle, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	tunnel, br, status := connect(t, p, fmt.Sprintf("127.0.0.2:%d", port), "")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	wait.For(t, 3*time.Second, "two connections", func() bool { return value(p.Metrics.ActiveConnections) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan int, 1)
	go func() { done <- p.Shutdown(ctx) }()

	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want it closed", n, err)
	}
	io.WriteString(tunnel, "during drain")
	buf := make([]byte, 12)
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatalf("tunnel during the grace period: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("still accepting while draining")
	}
	if cut := <-done; cut != 1 {
		t.Fatalf("Shutdown cut %d connections at the end of the grace period, want the tunnel", cut)
	}
	if elapsed := time.Since(start); elapsed < 400*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before the grace period", elapsed)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after the grace period")
	}
}

// When the grace period ends, a dial still waiting for a destination that never
// answers is cancelled: Shutdown returns at the grace period, not at the dial timeout,
// and the cut dial is no dial error (the destination did not fail, the proxy stopped).
func TestShutdownCancelsDialsInProgress(t *testing.T) {
	silent := serve.Silent(t, "127.0.0.2").String()
	_, port, _ := net.SplitHostPort(silent)
	portNumber, _ := strconv.Atoi(port)
	for _, raw := range []string{
		"GET http://" + silent + "/ HTTP/1.1\r\n\r\n",
		"CONNECT " + silent + " HTTP/1.1\r\n\r\n",
	} {
		t.Run(strings.Fields(raw)[0], func(t *testing.T) {
			p := startProxy(t, "127.0.0.2", nil, func(s *Server) {
				s.DialTimeout = 10 * time.Second
				s.ConnectPorts = []uint16{uint16(portNumber)}
			})
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, raw)
			wait.For(t, 3*time.Second, "the dial under way", func() bool { return value(p.Metrics.ActiveConnections) == 1 })
			time.Sleep(100 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			p.Shutdown(ctx)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Fatalf("Shutdown took %v with a 200ms grace period", elapsed)
			}
			dialErrors := make(chan prometheus.Metric, 8)
			p.Metrics.DialErrors.Collect(dialErrors)
			close(dialErrors)
			for m := range dialErrors {
				if n := value(m); n != 0 {
					t.Errorf("%v dial errors counted (%s) for the dial Shutdown cut, want 0", n, m.Desc())
				}
			}
		})
	}
}
