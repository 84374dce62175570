// Package dialer makes the proxies' outgoing connections: from the reserved source
// address of the destination's family, to exactly an address that passed the
// destination check. The check runs in net.Dialer.Control on the address the socket is
// about to connect to, so nothing between the decision and the connect(2) can swap
// the destination.
package dialer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/reserved"
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

// keepAlive notices a destination that vanished without a FIN, on connections that
// may be quiet for hours. Only the idle time is set; the kernel's probe interval and
// count stay, which saves two setsockopt calls on every connection.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: -1, Count: -1}

// ErrNoSource is returned for a destination whose family has no reserved address.
var ErrNoSource = errors.New("no reserved source address of the destination's family")

// Dial connects to dst.
func (d *Dialer) Dial(ctx context.Context, dst netip.AddrPort) (*net.TCPConn, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	nd := net.Dialer{
		Timeout:         d.Timeout,
		KeepAliveConfig: keepAlive,
		Control:         d.control,
	}
	if nd.Timeout == 0 {
		nd.Timeout = 10 * time.Second
	}
	// With no reserved source the wildcard is bound, which is what connect(2) alone
	// would do; IP_BIND_ADDRESS_NO_PORT (see control) leaves the port to connect.
	var src netip.Addr
	if len(d.Sources) > 0 {
		var ok bool
		if src, ok = d.Sources.For(dst.Addr()); !ok {
			return nil, fmt.Errorf("dial %s: %w", dst, ErrNoSource)
		}
	} else if dst.Addr().Is4() {
		src = netip.IPv4Unspecified()
	} else {
		src = netip.IPv6Unspecified()
	}
	network := "tcp4"
	if dst.Addr().Is6() {
		network = "tcp6"
	}
	// DialTCP takes the address as it is: no string to format and parse again, and
	// none of DialContext's resolution and fallback machinery on every connection.
	return nd.DialTCP(ctx, network, netip.AddrPortFrom(src, 0), dst)
}

// Usable reports whether the dialer can reach dst: it has a reserved source of dst's
// family, or no reserved source at all (the kernel then chooses).
func (d *Dialer) Usable(dst netip.Addr) bool {
	_, ok := d.Sources.For(dst)
	return ok || len(d.Sources) == 0
}

// control re-checks the exact address the socket connects to, and defers the choice
// of the source port from bind to connect (IP_BIND_ADDRESS_NO_PORT): a port taken at
// bind is reserved for every destination, one taken at connect only for this one, so
// the reserved address's ports are shared by the destinations, and bind skips the
// search for a port no socket holds.
func (d *Dialer) control(_, address string, c syscall.RawConn) error {
	if d.Check != nil {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("refusing to dial unparsable address %q: %w", address, err)
		}
		if err := d.Check(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())); err != nil {
			return err
		}
	}
	// An error (a kernel older than 4.2) only leaves the port to bind, as before.
	return c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}
