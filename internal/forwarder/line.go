package forwarder

import (
	"sync/atomic"

	"github.com/egress-router/egress-router/internal/relay"
)

// line is one forwarding line's listener. It lives as long as its local port is in the
// configuration; a changed line keeps its listener and counters and swaps its target.
type line struct {
	port     uint16
	listener *relay.Listener
	// serving is where new connections go. It is configured, or the target before it
	// while configured's new name has no answer yet: a reload to a new name must not
	// leave the line closing connections (and not ready) until DNS answers.
	serving    atomic.Pointer[target]
	configured *target // the latest configuration's target; guarded by Forwarder.mu
	stats      stats
}

// stats are a line's counters, read by the metrics collector.
type stats struct {
	active, total, sent, received, dialErrors, noAddress atomic.Int64
}

// configure makes t the line's configured target and reports whether it serves now:
// it does if it has an address or the current one has none; otherwise the current one
// keeps serving, and the caller calls serve once t's name answers. The caller holds
// Forwarder.mu.
func (l *line) configure(t *target) (serving bool) {
	was := l.configured
	l.configured = t
	defer l.release(was)
	if current := l.serving.Load(); current == nil || t.hasAddress() || !current.hasAddress() {
		l.serve(t)
		return true
	}
	return false
}

// serve swaps t in as the serving target. The caller holds Forwarder.mu.
func (l *line) serve(t *target) {
	l.release(l.serving.Swap(t))
}

// release stops the name resolution of a target the line dropped, unless the serving or
// the configured target still uses it. The caller holds Forwarder.mu.
func (l *line) release(dropped *target) {
	if dropped == nil || dropped.dest == l.configured.dest || dropped.dest == l.serving.Load().dest {
		return
	}
	dropped.stopResolving()
}

// close stops accepting and resolving; open connections finish. The caller holds
// Forwarder.mu.
func (l *line) close() {
	l.listener.Close()
	l.configured.stopResolving()
	l.serving.Load().stopResolving()
}
