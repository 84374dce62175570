package connlimit

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestLimiterCaps(t *testing.T) {
	a, b := netip.MustParseAddr("10.128.0.10"), netip.MustParseAddr("10.128.0.11")
	l := &Limiter{Max: 3, PerClient: 2}
	for i, tc := range []struct {
		client netip.Addr
		want   bool
	}{{a, true}, {a, true}, {a, false}, {b, true}, {b, false}} {
		if got := l.Acquire(tc.client); got != tc.want {
			t.Fatalf("acquire %d from %s = %v, want %v", i, tc.client, got, tc.want)
		}
	}
	l.Release(a)
	if !l.Acquire(b) {
		t.Fatal("a released slot is free for another client within its cap")
	}
	if l.Acquire(netip.MustParseAddr("10.128.0.12")) {
		t.Fatal("three slots are held: a fourth connection is over the global cap")
	}
	unlimited := &Limiter{}
	for i := range 100 {
		if !unlimited.Acquire(a) {
			t.Fatalf("zero caps must be unlimited; refused the connection %d", i+1)
		}
	}
}

func TestListenerClosesConnectionsOverThePerClientCap(t *testing.T) {
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan netip.Addr, 4)
	ln := &Listener{TCPListener: tl, Limiter: &Limiter{PerClient: 1}, Rejected: func(a netip.Addr) { rejected <- a }}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	first, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	held := <-accepted
	if _, ok := held.(*net.TCPConn); !ok {
		t.Fatalf("accepted %T, want a raw *net.TCPConn (splice)", held)
	}
	second, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	select {
	case a := <-rejected:
		if a != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("rejected %s", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("second connection from the same client not rejected")
	}
	second.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("rejected connection still open")
	}

	ln.Release(held)
	held.Close()
	third, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("connection after release not accepted")
	}
}
