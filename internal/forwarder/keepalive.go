package forwarder

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// TCP keepalive on the client side of every relayed connection, so a peer that vanished
// is noticed even with the idle timeout off: probes after 30s of silence, every 15s, 9
// unanswered ones end it (net's values for a 30s keepalive, which the dialer uses on
// the upstream side).
const (
	keepAliveIdleSeconds     = 30
	keepAliveIntervalSeconds = 15
	keepAliveCount           = 9
)

// keepAliveInherited is a ListenConfig.Control that turns keepalive on for the
// listening socket. Linux copies a listener's socket options to the sockets it
// accepts, so connections get keepalive without the four setsockopt calls net makes
// at each accept otherwise (the listener is opened with KeepAlive -1): at thousands
// of connections a second those calls are a measurable share of the accept path.
func keepAliveInherited(_, address string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdleSeconds),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveIntervalSeconds),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount),
		)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keepalive on the listener %s: %w", address, err)
	}
	return nil
}
