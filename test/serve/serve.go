// Package serve runs the throwaway TCP servers tests talk to.
package serve

import (
	"net"
	"net/netip"
	"testing"
)

// Conns hands every connection ln accepts to handle, each on a goroutine of its own,
// and closes it when handle returns, until ln is closed.
func Conns(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// Local listens on addr ("127.0.0.2:0") in the caller's network namespace until the
// test ends, serves it with Conns, and returns the address it listens on.
func Local(t testing.TB, addr string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	Conns(ln, handle)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
