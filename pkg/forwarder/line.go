package forwarder

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/egress-router/egress-router/pkg/connlimit"
)

// line is one forwarding line's listener. It lives as long as its local port is in the
// configuration; a changed line keeps its listener and counters and swaps its target.
type line struct {
	port     uint16
	listener *connlimit.Listener
	target   atomic.Pointer[target]
	stats    stats
}

// stats are a line's counters, read by the metrics collector.
type stats struct {
	active, total, sent, received, dialErrors, noAddress atomic.Int64
}

// acceptBackoff bounds the pause after an accept error such as EMFILE, so the loop
// neither spins nor stalls for long once the pressure ends.
const acceptBackoff = time.Second

// accept hands each accepted connection to handle, counted in d, until the listener
// is closed.
func (l *line) accept(d *drain, handle func(*line, *net.TCPConn)) {
	var pause time.Duration
	for {
		c, err := l.listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			pause = min(max(2*pause, 5*time.Millisecond), acceptBackoff)
			time.Sleep(pause)
			continue
		}
		pause = 0
		d.started()
		go handle(l, c.(*net.TCPConn))
	}
}
