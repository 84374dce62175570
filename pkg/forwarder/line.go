package forwarder

import (
	"net"
	"sync/atomic"

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

// accept hands each accepted connection to handle, counted in d, until the listener
// is closed.
func (l *line) accept(d *drain, handle func(*line, *net.TCPConn)) {
	for {
		c, err := l.listener.Accept() // waits out errors other than a closed listener
		if err != nil {
			return
		}
		d.started()
		go handle(l, c.(*net.TCPConn))
	}
}
