package httpproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// maxKeepAliveAllocs is what a keep-alive request to the same target may allocate in
// the proxy, both directions together; the package comment states the figure.
const maxKeepAliveAllocs = 0

// A keep-alive request on a kept upstream allocates nothing in the proxy: heads are
// read into reused buffers, the target is reused when the authority repeats, counters
// are resolved ahead of time. Client and origin here are raw loops that allocate
// nothing themselves, so what AllocsPerRun counts is the proxy's.
func TestKeepAliveRequestAllocations(t *testing.T) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4<<10)
		var pending []byte
		for {
			n, err := c.Read(buf[len(pending):])
			if err != nil {
				return
			}
			pending = buf[:len(pending)+n]
			for {
				end := bytes.Index(pending, []byte("\r\n\r\n"))
				if end < 0 {
					break
				}
				c.Write(answer)
				pending = pending[:copy(buf, pending[end+4:])]
			}
		}
	}()
	// Decision log lines, about 13 allocations each, are capped per second: the
	// limit here keeps them out of the figure, as at any real request rate.
	p := startProxy(t, "127.0.0.2", nil, func(s *Server) { s.DecisionLogsPerSecond = 1 })
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	request := []byte("GET http://" + ln.Addr().String() + "/ HTTP/1.1\r\nUser-Agent: alloc-test\r\n\r\n")
	buf := make([]byte, 4<<10)
	// The first request opens the upstream; its answer's length is every answer's.
	c.Write(request)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nok")) {
		t.Fatalf("first answer %q %v", buf[:n], err)
	}
	size := n
	allocs := testing.AllocsPerRun(200, func() {
		c.Write(request)
		if _, err := io.ReadFull(c, buf[:size]); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.1f allocations per keep-alive request", allocs)
	if allocs > maxKeepAliveAllocs {
		t.Fatalf("%.1f allocations per keep-alive request, want at most %d", allocs, maxKeepAliveAllocs)
	}
}
