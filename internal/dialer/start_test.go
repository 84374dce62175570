package dialer

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connected waits for Start's connect on fd to finish and returns the socket's local
// and remote addresses.
func connected(t *testing.T, fd int) (local, remote netip.AddrPort) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, err := unix.Poll(pfd, int(5*time.Second/time.Millisecond)); n != 1 || err != nil {
		t.Fatalf("connect did not finish: %d, %v", n, err)
	}
	if errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); errno != 0 || err != nil {
		t.Fatalf("connect failed: %v, %v", unix.Errno(errno), err)
	}
	addr := func(sa unix.Sockaddr) netip.AddrPort {
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *unix.SockaddrInet6:
			return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
		}
		return netip.AddrPort{}
	}
	l, _ := unix.Getsockname(fd)
	r, _ := unix.Getpeername(fd)
	return addr(l), addr(r)
}

// Start configures its socket as Dial does: the reserved source of the destination's
// family bound, the port left to connect, the check run on the unmapped address about
// to be connected, keepalive and TCP_NODELAY on; and it does not block.
func TestStartPreparesTheSocketAsDialDoes(t *testing.T) {
	dst := listen(t, "127.0.0.1:0")
	var checked netip.AddrPort
	d := Dialer{
		Sources: []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.2")},
		Check:   func(ap netip.AddrPort) error { checked = ap; return nil },
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	fd, err := d.Start(mapped)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if checked != dst {
		t.Fatalf("checked %s, want %s", checked, dst)
	}
	local, remote := connected(t, fd)
	if local.Addr() != netip.MustParseAddr("127.0.0.2") || remote != dst {
		t.Fatalf("connected %s -> %s, want 127.0.0.2 -> %s", local, remote, dst)
	}
	flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"IP_BIND_ADDRESS_NO_PORT", unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
	} {
		if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.want {
			t.Errorf("%s = %d (%v), want %d", o.name, v, err, o.want)
		}
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Error("the socket blocks")
	}
}

// A refused destination, or one without a source of its family, gets no socket.
func TestStartRefusesAsDialDoes(t *testing.T) {
	dst := listen(t, "127.0.0.1:0")
	refuse := errors.New("guarded")
	if fd, err := (&Dialer{Check: func(netip.AddrPort) error { return refuse }}).Start(dst); !errors.Is(err, refuse) || fd != -1 {
		t.Fatalf("refused destination: %d, %v", fd, err)
	}
	if fd, err := (&Dialer{Sources: []netip.Addr{netip.MustParseAddr("::1")}}).Start(dst); !errors.Is(err, ErrNoSource) || fd != -1 {
		t.Fatalf("no source of the family: %d, %v", fd, err)
	}
}
