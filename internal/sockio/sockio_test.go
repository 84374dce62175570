package sockio

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadWrite checks the raw calls keep read(2)'s and write(2)'s contract on a
// non-blocking socket: EAGAIN when nothing is queued, the bytes written, 0 at the end
// of the stream, EPIPE (not SIGPIPE) once the peer is gone.
func TestReadWrite(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer unix.Close(a)
	buf := make([]byte, 16)
	if n, err := Read(a, buf); n != 0 || err != unix.EAGAIN {
		t.Fatalf("read of an empty socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Write(b, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := Read(a, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d, %v, %q", n, err, buf[:n])
	}
	if n, err := Read(a, nil); n != 0 || err != nil {
		t.Fatalf("read of nothing: %d, %v", n, err)
	}
	unix.Close(b)
	if n, err := Read(a, buf); n != 0 || err != nil {
		t.Fatalf("read at the end: %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(a, []byte("x")); err != unix.EPIPE {
		t.Fatalf("write to a closed peer: %v; want EPIPE", err)
	}
}

// TestConnect opens a connection with the raw calls, in each family, and checks the
// listener sees it from the address bound (so the addresses and ports went over in
// network order) and TCP_NODELAY was set.
func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		family int
		addr   string
	}{{unix.AF_INET, "127.0.0.1"}, {unix.AF_INET6, "::1"}} {
		t.Run(tc.addr, func(t *testing.T) {
			ln, err := net.Listen("tcp", net.JoinHostPort(tc.addr, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fd, err := Socket(tc.family)
			if err != nil {
				t.Fatal(err)
			}
			defer Close(fd)
			if err := SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				t.Fatal(err)
			}
			if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); v != 1 || err != nil {
				t.Fatalf("TCP_NODELAY after SetsockoptInt: %d, %v", v, err)
			}
			local := netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 0)
			if err := Bind(fd, local); err != nil {
				t.Fatal(err)
			}
			sa, err := unix.Getsockname(fd)
			if err != nil {
				t.Fatal(err)
			}
			if err := Connect(fd, ln.Addr().(*net.TCPAddr).AddrPort()); err != nil && err != unix.EINPROGRESS {
				t.Fatal(err)
			}
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			var bound int
			switch sa := sa.(type) {
			case *unix.SockaddrInet4:
				bound = sa.Port
			case *unix.SockaddrInet6:
				bound = sa.Port
			}
			if from.Addr() != local.Addr() || int(from.Port()) != bound {
				t.Fatalf("the listener saw %v; bound %v port %d", from, local.Addr(), bound)
			}
		})
	}
}
