// Package serve runs the throwaway TCP servers tests talk to.
package serve

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
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

// Silent returns an address on ip, a loopback address such as 127.0.0.2, whose SYNs
// go unanswered until the test ends: a listener with a backlog of zero that never
// accepts, its one queue slot taken. A connect to it waits for its timeout, as one to
// a black-holed destination does.
func Silent(t testing.TB, ip string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		t.Fatalf("serve.Silent: %q is not an IPv4 loopback address", ip)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: a.As4()}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(a, uint16(sa.(*syscall.SockaddrInet4).Port))
	for range 4 { // fill the accept queue until a SYN goes unanswered
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return addr
		}
		if err != nil {
			t.Fatalf("serve.Silent: filling the queue of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("serve.Silent: the listener's queue never filled")
	return netip.AddrPort{}
}
