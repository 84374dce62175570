package forwarder

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// The accepted socket, not only the listener, must have keepalive: the forwarder sets
// it on the listener once and relies on the kernel copying it at accept.
func TestAcceptedConnectionsInheritTheListenersKeepalive(t *testing.T) {
	lc := net.ListenConfig{KeepAlive: -1, Control: keepAliveInherited}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	raw, err := accepted.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]int{
		"SO_KEEPALIVE":  {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":  {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdleSeconds},
		"TCP_KEEPINTVL": {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveIntervalSeconds},
		"TCP_KEEPCNT":   {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
	}
	raw.Control(func(fd uintptr) {
		for name, o := range want {
			if got, err := unix.GetsockoptInt(int(fd), o[0], o[1]); err != nil || got != o[2] {
				t.Errorf("accepted socket %s = %d (%v), want %d", name, got, err, o[2])
			}
		}
	})
}
