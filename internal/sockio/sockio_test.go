package sockio

import (
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReadWrite checks the raw calls keep read(2)'s and write(2)'s contract on a
// non-blocking socket: EAGAIN when nothing is queued, the bytes written, 0 at the end
// of the stream, EPIPE (not SIGPIPE) once the peer is gone.
func TestReadWrite(t *testing.T) {
	a, b := socketPair(t)
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

// socketPair returns the ends of a connected pair of non-blocking stream sockets. The
// test closes b itself, to see the end of the stream at a; a is closed at its end.
func socketPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]) })
	return fds[0], fds[1]
}

// TestSplice checks the raw call keeps splice(2)'s contract between a non-blocking
// socket and a pipe: EAGAIN when nothing is queued, the bytes moved each way, 0 at the
// end of the stream, EPIPE once the peer is gone.
func TestSplice(t *testing.T) {
	a, b := socketPair(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if n, err := Splice(a, p[1], 16); n != 0 || err != unix.EAGAIN {
		t.Fatalf("splice of an empty socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Splice(p[0], a, 16); n != 0 || err != unix.EAGAIN {
		t.Fatalf("splice of an empty pipe: %d, %v; want 0, EAGAIN", n, err)
	}
	if _, err := Write(b, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n, err := Splice(a, p[1], 16); n != 5 || err != nil {
		t.Fatalf("splice into the pipe: %d, %v; want 5", n, err)
	}
	if n, err := Splice(p[0], a, 5); n != 5 || err != nil {
		t.Fatalf("splice out of the pipe: %d, %v; want 5", n, err)
	}
	buf := make([]byte, 16)
	if n, err := Read(b, buf); string(buf[:n]) != "hello" || err != nil {
		t.Fatalf("the peer read %q, %v; want hello", buf[:n], err)
	}
	unix.Close(b)
	if n, err := Splice(a, p[1], 16); n != 0 || err != nil {
		t.Fatalf("splice at the end: %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(p[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Splice(p[0], a, 1); err != unix.EPIPE {
		t.Fatalf("splice to a closed peer: %v; want EPIPE", err)
	}
}

// TestConnect opens a connection with the raw calls, in each family, from a bound
// address and port the kernel would not have chosen, and accepts it with Accept: the
// peer it reports is the one bound, so addresses and ports went over in network order
// both ways.
func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		family       int
		listen, bind string
	}{{unix.AF_INET, "127.0.0.1", "127.0.0.2"}, {unix.AF_INET6, "::1", "::1"}} {
		t.Run(tc.bind, func(t *testing.T) {
			ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.listen), 0)))
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
			from := netip.AddrPortFrom(netip.MustParseAddr(tc.bind), freePort(t, tc.bind))
			if err := Bind(fd, from); err != nil {
				t.Fatal(err)
			}
			if err := Connect(fd, ln.Addr().(*net.TCPAddr).AddrPort()); err != nil && err != unix.EINPROGRESS {
				t.Fatal(err)
			}
			peer := acceptOne(t, ln)
			if peer != from {
				t.Fatalf("Accept reports the peer %v; bound %v", peer, from)
			}
		})
	}
	if err := Connect(-1, netip.AddrPort{}); err != unix.EAFNOSUPPORT {
		t.Fatalf("Connect to the zero address: %v; want EAFNOSUPPORT", err)
	}
}

// TestHtons checks a value is stored big-endian in memory, as in_port_t is.
func TestHtons(t *testing.T) {
	v := Htons(0x1234)
	if b := (*[2]byte)(unsafe.Pointer(&v)); b[0] != 0x12 || b[1] != 0x34 {
		t.Fatalf("Htons(0x1234) is stored as % x; want 12 34", b[:])
	}
	if Htons(Htons(0x1234)) != 0x1234 {
		t.Fatal("Htons is not its own inverse")
	}
}

// freePort returns a port free on addr now (bound, then released).
func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort().Port()
}

// acceptOne accepts one connection on ln with Accept, waiting up to 5 s for it to be
// queued, closes it and returns its peer.
func acceptOne(t *testing.T, ln *net.TCPListener) netip.AddrPort {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var nfd int
		var peer netip.AddrPort
		var aerr error
		if err := rc.Control(func(fd uintptr) { nfd, peer, aerr = Accept(int(fd)) }); err != nil {
			t.Fatal(err)
		}
		if aerr == unix.EAGAIN {
			continue
		}
		if aerr != nil {
			t.Fatal(aerr)
		}
		Close(nfd)
		return peer
	}
	t.Fatal("no connection queued within 5 s")
	return netip.AddrPort{}
}
