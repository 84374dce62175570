package httpproxy

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzRequestPath feeds arbitrary bytes to the proxy as a client connection. Whatever
// they are, the proxy must not panic and must never connect to the denied canary: not
// by address, not through a name resolving to it, not by a request smuggled behind
// another. ORIGIN and CANARY in an input stand for the allowed and denied servers.
func FuzzRequestPath(f *testing.F) {
	o := startOrigin(f, "127.0.0.2:0", nil)
	canary, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		f.Fatal(err)
	}
	defer canary.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := canary.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	dns := newDNS(map[string]string{"evil.example.com": "127.0.0.3", "good.example.com": "127.0.0.2"})
	p := startProxy(f, "127.0.0.2\n!127.0.0.3\n*.example.com", dns, func(s *Server) {
		s.HeaderTimeout, s.IdleTimeout, s.UpstreamTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
		s.ConnectPorts = []uint16{443, uint16(canary.Addr().(*net.TCPAddr).Port)}
	})
	originAddr, canaryAddr := o.Listener.Addr().String(), canary.Addr().String()
	for _, seed := range []string{
		"GET http://ORIGIN/ HTTP/1.1\r\nHost: x\r\n\r\nGET http://ORIGIN/a HTTP/1.1\r\n\r\n",
		"GET http://CANARY/ HTTP/1.1\r\n\r\n",
		"CONNECT CANARY HTTP/1.1\r\n\r\nGET http://CANARY/ HTTP/1.1\r\n\r\n",
		"GET http://evil.example.com:80/ HTTP/1.1\r\n\r\n",
		"POST http://ORIGIN/ HTTP/1.1\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://CANARY/ HTTP/1.1\r\n\r\n",
		"POST http://ORIGIN/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET http://CANARY/ HTTP/1.1\r\n\r\n",
		"GET http://[::ffff:127.0.0.3]/ HTTP/1.1\r\n\r\n",
		"GET http://ORIGIN/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		raw := strings.NewReplacer("ORIGIN", originAddr, "CANARY", canaryAddr).Replace(string(input))
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, raw)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		if n := reached.Load(); n != 0 {
			t.Fatalf("the denied canary was reached by %q", raw)
		}
		if n := value(p.Metrics.Panics); n != 0 {
			t.Fatalf("panic on %q: %s", raw, p.logs.String())
		}
	})
}
