package httpproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/serve"
)

// Requests a proxy must refuse rather than guess at (security.md items 2, 5, 6, 8):
// each gets its error status, and the origin receives nothing.
func TestMalformedAndAmbiguousRequestsAreRefused(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2", nil)
	target := "http://127.0.0.2:" + o.port() + "/"
	get := func(extra string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n"
	}
	for _, tc := range []struct {
		name, raw string
		want      int
	}{
		{"Content-Length and Transfer-Encoding", get("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400},
		{"Transfer-Encoding then Content-Length", get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "0\r\n\r\n", 400},
		{"two Transfer-Encoding fields", get("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400},
		{"a coding other than chunked", get("Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n", 501},
		{"differing Content-Lengths", get("Content-Length: 1\r\nContent-Length: 2\r\n") + "ab", 400},
		{"signed Content-Length", get("Content-Length: +1\r\n") + "a", 400},
		{"Content-Length list", get("Content-Length: 1, 1\r\n") + "a", 400},
		{"space before colon", get("Transfer-Encoding : chunked\r\n") + "0\r\n\r\n", 400},
		{"tab before colon", get("Content-Length\t: 1\r\n") + "a", 400},
		{"obsolete line folding", get("X-A: 1\r\n  folded\r\n"), 400},
		{"bare LF ending a field", "GET " + target + " HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400},
		{"bare LF ending the request line", "GET " + target + " HTTP/1.1\nHost: x\r\n\r\n", 400},
		{"bare LF ending the head", "GET " + target + " HTTP/1.1\r\nHost: x\r\n\n", 400},
		{"NUL in a value", get("X-A: a\x00b\r\n"), 400},
		{"CR in a value", get("X-A: a\rb\r\n"), 400},
		{"Transfer-Encoding in HTTP/1.0", "POST " + target + " HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bad chunk size", get("Transfer-Encoding: chunked\r\n") + "zz\r\nhello\r\n0\r\n\r\n", 400},
		{"bare LF after chunk size", get("Transfer-Encoding: chunked\r\n") + "5\nhello\r\n0\r\n\r\n", 400},
		{"chunk longer than its size", get("Transfer-Encoding: chunked\r\n") + "3\r\nhello\r\n0\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"HTTP/0.9 request", "GET /\r\n\r\n", 400},
		{"origin-form request to the proxy", "GET / HTTP/1.1\r\nHost: 127.0.0.2:" + o.port() + "\r\n\r\n", 400},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"https in absolute form", "GET https://127.0.0.2:" + o.port() + "/ HTTP/1.1\r\n\r\n", 400},
		{"user information in the authority", "GET http://user@127.0.0.2:" + o.port() + "/ HTTP/1.1\r\n\r\n", 400},
		{"fragment in the target", "GET " + target + "#f HTTP/1.1\r\n\r\n", 400},
		{"two spaces in the request line", "GET  " + target + " HTTP/1.1\r\n\r\n", 400},
		{"method that is not a token", "G(T " + target + " HTTP/1.1\r\n\r\n", 400},
		{"head larger than the limit", get("X-Big: " + strings.Repeat("a", 20<<10) + "\r\n"), 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(o.received())
			got := p.exchange(t, tc.raw)
			if status := statusOf(got); status != tc.want {
				t.Fatalf("answer %q, want status %d", got, tc.want)
			}
			if !strings.Contains(got, "Connection: close") {
				t.Fatalf("error answer does not close: %q", got)
			}
			if tc.want != 400 || !strings.Contains(tc.name, "chunk") {
				if n := len(o.received()) - before; n != 0 {
					t.Fatalf("the origin received %d requests", n)
				}
			}
		})
	}
}

// A control character anywhere in the request line, a tab included, gets 400 and
// reaches no destination: the proxy would otherwise pass it on verbatim to a server
// that may split the line on it differently (security.md items 2 and 6). The origin
// here takes any bytes, so only the proxy can refuse them.
func TestControlCharactersInTheRequestLineAreRefused(t *testing.T) {
	var received atomic.Int32
	origin := serve.Local(t, "127.0.0.2:0", func(c net.Conn) {
		received.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.ConnectPorts = []uint16{origin.Port()} })
	target := "http://" + origin.String() + "/"
	for _, tc := range []struct{ name, line string }{
		{"tab in the path", "GET " + target + "a\tb HTTP/1.1"},
		{"tab in the query", "GET " + target + "?a=\t HTTP/1.1"},
		{"tab ending the target", "GET " + target + "\t HTTP/1.1"},
		{"tab after the version", "GET " + target + " HTTP/1.1\t"},
		{"tab in the method", "G\tET " + target + " HTTP/1.1"},
		{"tab in a CONNECT target", "CONNECT " + origin.String() + "\t HTTP/1.1"},
		{"vertical tab in the path", "GET " + target + "a\vb HTTP/1.1"},
		{"NUL in the path", "GET " + target + "a\x00b HTTP/1.1"},
		{"DEL in the path", "GET " + target + "a\x7fb HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.exchange(t, tc.line+"\r\nConnection: close\r\n\r\n"); statusOf(got) != 400 {
				t.Errorf("answer %q, want 400", got)
			}
		})
	}
	if n := received.Load(); n != 0 {
		t.Fatalf("the origin was reached %d times", n)
	}
}

// Every other spelling of an address is refused before any rule is consulted
// (security.md item 2), so "127.0.0.2" rules cannot be dodged or matched by accident.
func TestSecondSpellingsOfHostsAreRefused(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2\n*", nil)
	port := o.port()
	for _, host := range []string{
		"0x7f.0.0.2", "0177.0.0.2", "2130706434", "127.2", "127.0.0.02", "[::ffff:127.0.0.2]",
		"[::127.0.0.2]", "[fe80::1%25lo]", "[127.0.0.2]", "::1", "127.0.0.2.", "exa mple.com",
		"%31%32%37.0.0.2", "example..com",
	} {
		raw := "GET http://" + host + ":" + port + "/ HTTP/1.1\r\n\r\n"
		if got := statusOf(p.exchange(t, raw)); got != 400 {
			t.Errorf("host %q: status %d, want 400", host, got)
		}
	}
	if n := len(o.received()); n != 0 {
		t.Fatalf("the origin received %d requests", n)
	}
}

// The target of an absolute-form request is its authority, whatever Host says, and the
// Host sent upstream is the target (security.md item 5).
func TestAbsoluteFormTargetWinsOverHost(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "127.0.0.2", nil)
	raw := "GET http://127.0.0.2:" + o.port() + "/path?q=1 HTTP/1.1\r\nHost: metadata.google.internal\r\nConnection: close\r\n\r\n"
	if got := statusOf(p.exchange(t, raw)); got != 200 {
		t.Fatalf("status %d", got)
	}
	r := o.received()[0]
	if r.Host != "127.0.0.2:"+o.port() || r.URL.String() != "/path?q=1" {
		t.Fatalf("origin saw Host %q target %q", r.Host, r.URL)
	}
}

// Error pages are fixed: nothing from the request comes back in them (security.md 11).
func TestErrorPagesDoNotReflectTheRequest(t *testing.T) {
	p := startProxy(t, "127.0.0.2", nil)
	for _, raw := range []string{
		"GET http://denied.example.com/<script>alert(1)</script> HTTP/1.1\r\nX-Evil: <b>\r\n\r\n",
		"GET http://<script>/ HTTP/1.1\r\n\r\n",
		"CONNECT <script>:443 HTTP/1.1\r\n\r\n",
	} {
		got := p.exchange(t, raw)
		if strings.Contains(got, "script") || strings.Contains(got, "<b>") || strings.Contains(got, "denied.example") {
			t.Errorf("answer reflects the request: %q", got)
		}
	}
}

// A slow client cannot hold a connection by trickling its head (security.md item 8);
// it is told why with 408.
func TestHeadMustArriveWithinTheHeaderTimeout(t *testing.T) {
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.HeaderTimeout = 200 * time.Millisecond })
	start := time.Now()
	got := p.exchange(t, "GET http://127.0.0.2/ HTTP/1.1\r\nX-Slow: ")
	if elapsed := time.Since(start); elapsed > 2*time.Second || statusOf(got) != 408 {
		t.Fatalf("after %v got %q; want 408 and the connection closed after about 200ms", elapsed, got)
	}
}

// A Connection field naming a framing field tells the next hop to drop the length the
// proxy frames the body by: a hop honouring it reads the body as a second message.
// Such requests get 400 and such responses 502, and nothing passes on (security.md 6).
func TestConnectionNamingAFramingFieldIsRefused(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		o := startOrigin(t, "127.0.0.2:0", nil)
		p := startProxy(t, "127.0.0.2", nil)
		smuggled := "GET /admin HTTP/1.1\r\nHost: internal.example\r\n\r\n"
		for _, connection := range []string{"content-length", "Content-Length", "keep-alive, content-length", "host", "transfer-encoding"} {
			raw := "POST http://127.0.0.2:" + o.port() + "/ HTTP/1.1\r\nConnection: " + connection +
				"\r\nContent-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled
			if got := p.exchange(t, raw); statusOf(got) != 400 {
				t.Errorf("Connection: %s: answer %q, want 400", connection, got)
			}
		}
		if reqs := o.received(); len(reqs) != 0 {
			t.Fatalf("the origin received %s %s", reqs[0].Method, reqs[0].URL)
		}
	})
	t.Run("response", func(t *testing.T) {
		addr := rawOrigin(t, func(c net.Conn, r *http.Request) bool {
			if r.URL.Path == "/head" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
				return true
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello")
			return true
		})
		p := startProxy(t, "127.0.0.2", nil)
		if got := p.exchange(t, "GET http://"+addr+"/ HTTP/1.1\r\n\r\n"); statusOf(got) != 502 {
			t.Errorf("answer %q, want 502", got)
		}
		// The proxy writes the length itself: a HEAD answer keeps the one a GET would get.
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(p.exchange(t, "HEAD http://"+addr+"/head HTTP/1.1\r\nConnection: close\r\n\r\n"))), &http.Request{Method: "HEAD"})
		if err != nil || resp.ContentLength != 100 {
			t.Fatalf("HEAD answer %v %v, want Content-Length 100", resp, err)
		}
	})
}
