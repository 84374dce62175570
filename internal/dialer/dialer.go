// Package dialer makes the proxies' outgoing connections: from the reserved source
// address of the destination's family, to exactly an address that passed the
// destination check. The check runs on the socket about to connect (in
// net.Dialer.Control for Dial, before connect(2) for Start, one prepare for both), on
// the address it connects to, so nothing between the decision and the connect(2) can
// swap the destination.
package dialer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/reserved"
	"github.com/egress-router/egress-router/internal/sockio"
)

// Dialer dials TCP destinations for a proxy.
type Dialer struct {
	// Sources are the reserved addresses. The one of the destination's family is bound;
	// with none configured (a legacy setup without EGRESS_SOURCE) the kernel chooses.
	Sources reserved.Sources
	// Timeout bounds the connect; zero means 10 seconds.
	Timeout time.Duration
	// Check refuses a destination. It runs in Control, on the exact address connect(2)
	// gets; its error is in the chain Dial returns (errors.Is finds it).
	Check func(netip.AddrPort) error
}

// keepAliveIdle is how long a connection to a destination stays quiet before TCP
// keepalive probes it: a destination that vanished without a FIN is noticed on
// connections that may be quiet for hours. Only the idle time is set; the kernel's
// probe interval and count stay, which saves two setsockopt calls on every connection.
const keepAliveIdle = 30 * time.Second

var keepAlive = net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle, Interval: -1, Count: -1}

// ErrNoSource is returned for a destination whose family has no reserved address.
var ErrNoSource = errors.New("no reserved source address of the destination's family")

// Dial connects to dst.
func (d *Dialer) Dial(ctx context.Context, dst netip.AddrPort) (*net.TCPConn, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	src, err := d.source(dst)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{
		Timeout:         d.ConnectTimeout(),
		KeepAliveConfig: keepAlive,
		Control:         d.control,
	}
	network := "tcp4"
	if dst.Addr().Is6() {
		network = "tcp6"
	}
	// DialTCP takes the address as it is: no string to format and parse again, and
	// none of DialContext's resolution and fallback machinery on every connection.
	return nd.DialTCP(ctx, network, netip.AddrPortFrom(src, 0), dst)
}

// Start begins connecting to dst for an event loop, which waits for the connect
// (writable, then SO_ERROR on error) and enforces Timeout itself: the socket is
// non-blocking and close-on-exec, checked, configured and bound exactly as Dial's,
// with TCP_NODELAY and keepalive as the net package sets them, and connect(2) is
// under way (or done) when Start returns the descriptor, which the caller then owns.
func (d *Dialer) Start(dst netip.AddrPort) (int, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	src, err := d.source(dst)
	if err != nil {
		return -1, err
	}
	family, network := unix.AF_INET, "tcp4"
	if dst.Addr().Is6() {
		family, network = unix.AF_INET6, "tcp6"
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(dst), Err: err}
	}
	fd, err := sockio.Socket(family)
	if err != nil {
		return -1, opErr(os.NewSyscallError("socket", err))
	}
	if err := d.connect(fd, src, dst); err != nil {
		sockio.Close(fd)
		return -1, opErr(err)
	}
	return fd, nil
}

// connect checks, configures and binds the new socket fd for dst and starts its
// connect(2), which may still be under way when it returns.
func (d *Dialer) connect(fd int, src netip.Addr, dst netip.AddrPort) error {
	if err := d.prepare(fd, dst); err != nil {
		return err
	}
	err := errors.Join(
		sockio.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1),
		sockio.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
		sockio.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAliveIdle/time.Second)),
	)
	if err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if err := sockio.Bind(fd, netip.AddrPortFrom(src, 0)); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if err := sockio.Connect(fd, dst); err != nil && err != unix.EINPROGRESS {
		return os.NewSyscallError("connect", err)
	}
	return nil
}

// ConnectTimeout is how long one connect may take: Timeout, or 10 seconds. A caller
// of Start enforces it.
func (d *Dialer) ConnectTimeout() time.Duration {
	if d.Timeout == 0 {
		return 10 * time.Second
	}
	return d.Timeout
}

// source is the address to bind for dst: the reserved one of its family, or, with no
// reserved source, the wildcard, which is what connect(2) alone would do;
// IP_BIND_ADDRESS_NO_PORT (see prepare) leaves the port to connect.
func (d *Dialer) source(dst netip.AddrPort) (netip.Addr, error) {
	if len(d.Sources) > 0 {
		src, ok := d.Sources.For(dst.Addr())
		if !ok {
			return netip.Addr{}, fmt.Errorf("dial %s: %w", dst, ErrNoSource)
		}
		return src, nil
	}
	if dst.Addr().Is4() {
		return netip.IPv4Unspecified(), nil
	}
	return netip.IPv6Unspecified(), nil
}

// Usable reports whether the dialer can reach dst: it has a reserved source of dst's
// family, or no reserved source at all (the kernel then chooses).
func (d *Dialer) Usable(dst netip.Addr) bool {
	_, ok := d.Sources.For(dst)
	return ok || len(d.Sources) == 0
}

// control runs prepare on the socket Dial is about to connect.
func (d *Dialer) control(_, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to dial unparsable address %q: %w", address, err)
	}
	var prepErr error
	if err := c.Control(func(fd uintptr) { prepErr = d.prepare(int(fd), ap) }); err != nil {
		return err
	}
	return prepErr
}

// prepare re-checks the exact address the socket fd connects to, and defers the choice
// of the source port from bind to connect (IP_BIND_ADDRESS_NO_PORT): a port taken at
// bind is reserved for every destination, one taken at connect only for this one, so
// the reserved address's ports are shared by the destinations, and bind skips the
// search for a port no socket holds.
func (d *Dialer) prepare(fd int, dst netip.AddrPort) error {
	if d.Check != nil {
		if err := d.Check(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())); err != nil {
			return err
		}
	}
	// An error (a kernel older than 4.2) only leaves the port to bind, as before.
	sockio.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	return nil
}
