package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/test/serve"
	"github.com/egress-router/egress-router/test/wait"
)

// Hop-by-hop fields are removed both ways; no Via or X-Forwarded-For unless enabled
// (security.md item 7).
func TestHopByHopFieldsAreRemovedBothWays(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Set("X-End-To-End", "kept")
		fmt.Fprint(w, "ok")
	})
	for _, tc := range []struct {
		name         string
		via, xff     bool
		wantVia, xfw string
	}{
		{"by default nothing is added", false, false, "", ""},
		{"Via and X-Forwarded-For when enabled", true, true, viaValue, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.AddVia, s.AddForwardedFor = tc.via, tc.xff })
			raw := "GET http://127.0.0.2:" + o.port() + "/ HTTP/1.1\r\n" +
				"Connection: close, X-Secret\r\nX-Secret: s\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n" +
				"Proxy-Connection: keep-alive\r\nKeep-Alive: 300\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n" +
				"X-Kept: k\r\n\r\n"
			answer := p.exchange(t, raw)
			reqs := o.received()
			if len(reqs) == 0 {
				t.Fatalf("nothing reached the origin; answer %q", answer)
			}
			got := reqs[len(reqs)-1].Header
			for _, name := range []string{"X-Secret", "Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Upgrade"} {
				if v := got.Get(name); v != "" {
					t.Errorf("origin received %s: %q", name, v)
				}
			}
			if got.Get("X-Kept") != "k" {
				t.Errorf("end-to-end field lost: %v", got)
			}
			if got.Get("Via") != tc.wantVia || got.Get("X-Forwarded-For") != tc.xfw {
				t.Errorf("origin saw Via %q X-Forwarded-For %q", got.Get("Via"), got.Get("X-Forwarded-For"))
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
				if v := resp.Header.Get(name); v != "" {
					t.Errorf("client received %s: %q", name, v)
				}
			}
			if resp.Header.Get("X-End-To-End") != "kept" {
				t.Errorf("end-to-end response field lost: %v", resp.Header)
			}
		})
	}
}

// A keep-alive client reuses one upstream connection; another client never gets it
// (security.md item 6).
func TestUpstreamConnectionsAreNeverSharedAcrossClients(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2", nil)
	url := "http://127.0.0.2:" + o.port() + "/"
	a, b := p.client(), p.client()
	for _, c := range []*http.Client{a, a, b, a, b} {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	o.mu.Lock()
	peers := o.peers
	o.mu.Unlock()
	if peers[0] != peers[1] || peers[1] != peers[3] {
		t.Errorf("client A's requests came over %v; want one upstream connection", []string{peers[0], peers[1], peers[3]})
	}
	if peers[2] != peers[4] || peers[2] == peers[0] {
		t.Errorf("client B's requests came over %s, %s; A's over %s", peers[2], peers[4], peers[0])
	}
}

// A kept upstream connection the origin closed while idle is replaced transparently.
func TestStaleUpstreamIsRedialled(t *testing.T) {
	// The origin answers one request per connection as if it kept it alive, then
	// closes it: what an origin's idle timeout looks like to the proxy.
	origin := serve.Local(t, "127.0.0.2:0", func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			time.Sleep(50 * time.Millisecond)
		}
	})
	p := startProxy(t, "127.0.0.2", nil)
	c := p.client()
	for range 2 {
		resp, err := c.Get("http://" + origin.String() + "/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(200 * time.Millisecond)
	}
}

// Bodies in both directions, each framing: length, chunked, until close; HTTP/1.0
// clients get a chunked response decoded.
func TestBodiesAreRelayedInEveryFraming(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write(body)
			w.(http.Flusher).Flush() // forces chunked framing
			w.Write([]byte("!"))
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	})
	p := startProxy(t, "127.0.0.2", nil)
	base := "http://127.0.0.2:" + o.port()
	big := strings.Repeat("0123456789", 100_000)
	for _, tc := range []struct{ name, raw, wantBody string }{
		{"length both ways", "POST " + base + "/ HTTP/1.1\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\nConnection: close\r\n\r\n" + big, big},
		{"chunked request", "POST " + base + "/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", "hello world"},
		{"chunked response to HTTP/1.1", "POST " + base + "/chunked HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", "hi!"},
		{"chunked response to HTTP/1.0 is decoded", "POST " + base + "/chunked HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", "hi!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := p.exchange(t, tc.raw)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
			if err != nil {
				t.Fatalf("%v in %.200q", err, answer)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != tc.wantBody {
				t.Fatalf("body %.100q (%d bytes), %v; want %d bytes", body, len(body), err, len(tc.wantBody))
			}
			if strings.Contains(tc.name, "1.0") && len(resp.TransferEncoding) > 0 {
				t.Fatalf("HTTP/1.0 client got Transfer-Encoding %v", resp.TransferEncoding)
			}
		})
	}
}

// Expect: 100-continue is answered by the proxy so the client sends its body at once.
func TestExpectContinueIsAnswered(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	p := startProxy(t, "127.0.0.2", nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "PUT http://127.0.0.2:%s/ HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", o.port())
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first answer %q", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "data")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(io.LimitReader(resp.Body, 4)); string(body) != "data" {
		t.Fatalf("echoed %q", body)
	}
	if got := o.received()[0].Header.Get("Expect"); got != "" {
		t.Fatalf("Expect passed on: %q", got)
	}
}

// 502 for a refused connection, 504 for a destination that never answers, and the
// loop back into the proxy is refused (security.md item 9).
func TestUpstreamFailuresAndLoops(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // holds the connection, never answers
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.2:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	// The proxy's own address is named, so what refuses it is the loop check.
	p := startProxy(t, "127.0.0.2\n127.0.0.1", nil, func(s *Server) { s.UpstreamTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"connection refused", "http://" + closedAddr + "/", 502},
		{"no answer", "http://" + silent.Addr().String() + "/", 504},
		{"the proxy itself", "http://" + p.addr + "/", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := p.get(t, tc.url); status != tc.want {
				t.Fatalf("status %d %q, want %d", status, body, tc.want)
			}
		})
	}
}

// A request with side effects is not sent again when the kept upstream turns out to
// be closed: the destination may have acted on it before the connection ended.
func TestStaleUpstreamIsNotRetriedForUnsafeMethods(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	addr := rawOrigin(t, func(c net.Conn, r *http.Request) bool {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // closes while the proxy keeps the connection
	})
	p := startProxy(t, "127.0.0.2", nil)
	for _, method := range []string{"POST", "DELETE", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			br := bufio.NewReader(c)
			status := func(method string) int {
				fmt.Fprintf(c, "%s http://%s/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", method, addr)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				io.Copy(io.Discard, resp.Body)
				return resp.StatusCode
			}
			mu.Lock()
			methods = nil
			mu.Unlock()
			if got := status("GET"); got != 200 {
				t.Fatalf("GET: status %d", got)
			}
			time.Sleep(100 * time.Millisecond) // the origin's close reaches the proxy
			if got := status(method); got != 502 {
				t.Fatalf("%s on a stale upstream: status %d, want 502", method, got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(methods) != 1 {
				t.Fatalf("the origin received %v; want the GET only", methods)
			}
		})
	}
}

// Interim responses reach the client as they come (103 Early Hints must be early), up
// to a limit: a destination sending more gets the exchange ended with 502.
func TestInterimResponsesArePassedOnAtOnceUpToALimit(t *testing.T) {
	release := make(chan struct{})
	addr := rawOrigin(t, func(c net.Conn, r *http.Request) bool {
		switch r.URL.Path {
		case "/hints":
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
			select {
			case <-release:
			case <-time.After(3 * time.Second):
			}
		case "/endless":
			io.WriteString(c, strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInterim+1))
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	p := startProxy(t, "127.0.0.2", nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "GET http://%s/hints HTTP/1.1\r\n\r\n", addr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 103 || resp.Header.Get("Link") == "" || resp.Header.Get("Connection") != "" {
		t.Fatalf("first answer %v %v; want the 103 with its Link, before the final answer", resp, err)
	}
	close(release)
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("final answer %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)

	fmt.Fprintf(c, "GET http://%s/endless HTTP/1.1\r\n\r\n", addr)
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 200 {
			if resp.StatusCode != 502 || interim != maxInterim {
				t.Fatalf("after %d interim answers: %d; want 502 after %d", interim, resp.StatusCode, maxInterim)
			}
			break
		}
	}
}

// A reload that changes the reserved source address ends the kept upstream connections
// that left from the old one: the next request leaves from the new address.
func TestReloadedSourceReplacesAKeptUpstream(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2", nil)
	policy := mustPolicy(t, "127.0.0.2")
	client := p.client()
	for _, source := range []string{"127.0.0.4", "127.0.0.5"} {
		p.SetRules(Rules{Policy: policy, Sources: []netip.Addr{netip.MustParseAddr(source)}})
		resp, err := client.Get("http://127.0.0.2:" + o.port() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.mu.Lock()
		peer := o.peers[len(o.peers)-1]
		o.mu.Unlock()
		if host, _, _ := net.SplitHostPort(peer); host != source {
			t.Fatalf("with source %s reserved the request came from %s", source, peer)
		}
	}
}

// A status line may have an empty reason phrase, with or without the space before it.
func TestStatusLineWithoutAReasonIsAccepted(t *testing.T) {
	lines := map[string]string{"/bare": "HTTP/1.1 200", "/space": "HTTP/1.1 200 ", "/reason": "HTTP/1.1 200 OK"}
	addr := rawOrigin(t, func(c net.Conn, r *http.Request) bool {
		io.WriteString(c, lines[r.URL.Path]+"\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	p := startProxy(t, "127.0.0.2", nil)
	for path, line := range lines {
		raw := "GET http://" + addr + path + " HTTP/1.1\r\nConnection: close\r\n\r\n"
		if got := p.exchange(t, raw); statusOf(got) != 200 || !strings.HasSuffix(got, "\r\n\r\nok") {
			t.Errorf("origin's %q: answer %q", line, got)
		}
	}
}

// Every loopback address reaches this host, not only the 127.0.0.1 the interfaces list:
// a request to the proxy's own port on any of them is a loop (security.md item 9).
func TestLoopThroughAnyLoopbackAddressIsRefused(t *testing.T) {
	p := startProxy(t, "127.0.0.9", nil) // named: only the loop check refuses it
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	// The cap bounds the recursion should the loop get through.
	go p.Serve(&connlimit.Listener{TCPListener: ln.(*net.TCPListener), Limiter: &connlimit.Limiter{Max: 8}})
	p.init() // Serve's, which may not have run yet
	wait.For(t, 3*time.Second, "the second listener served", func() bool { return p.isSelf(ln.Addr().(*net.TCPAddr).AddrPort()) })
	if status, body := p.get(t, "http://"+ln.Addr().String()+"/"); status != 403 {
		t.Fatalf("request to the proxy itself on 127.0.0.9: %d %q, want 403", status, body)
	}
}

// The loop check matches what the kernel connects to, not the port alone: an origin
// on the proxy's port number at another address is served (two ephemeral listeners on
// different loopback addresses can draw the same port). The wildcard listener, reached
// through every address of the pod, is tested in test/httpproxy.
func TestOriginOnTheProxysPortAtAnotherAddressIsServed(t *testing.T) {
	// The proxy listens on 127.0.0.1; another test process may hold its port number on
	// 127.0.0.2, so a proxy whose port is taken there makes way for another.
	var p *proxy
	var port string
	for try := 0; ; try++ {
		p = startProxy(t, "127.0.0.2", nil)
		_, port, _ = net.SplitHostPort(p.addr)
		ln, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err == nil {
			ln.Close()
			break
		}
		if try == 4 {
			t.Fatalf("no proxy port free on 127.0.0.2 too: %v", err)
		}
	}
	o := startOrigin(t, "127.0.0.2:"+port, nil)
	if status, body := p.get(t, o.URL+"/"); status != 200 {
		t.Fatalf("origin on 127.0.0.2 at the proxy's port %s: %d %q, want 200", port, status, body)
	}
}
