package forwarder

import (
	"context"
	"sync"

	"github.com/egress-router/egress-router/internal/drain"
	"github.com/egress-router/egress-router/internal/relay"
)

// inFlight counts the connections being handled and holds each one's relay session,
// so Shutdown can wait for them and, once the grace period is over, close them.
type inFlight struct {
	handlers drain.Group
	mu       sync.Mutex
	// relayed holds each connection from its accept to its end: its relay session, or
	// nil while it is being handed to the relay.
	relayed map[*conn]*relay.Session
	forced  bool // the grace period is over: close whatever is still being set up
}

func newInFlight() *inFlight {
	return &inFlight{relayed: map[*conn]*relay.Session{}}
}

// started counts a connection being handled, or reports false once Shutdown began:
// the caller closes it.
func (d *inFlight) started() bool { return d.handlers.Start() }

func (d *inFlight) done() { d.handlers.Done() }

// track registers a connection about to be relayed, or returns false after the grace
// period: the caller closes it.
func (d *inFlight) track(c *conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.forced {
		return false
	}
	d.relayed[c] = nil
	return true
}

// relaying records the session that relays c, so closeAll can end it. A session
// that has ended already (untracked) is not recorded; one handed over after the
// grace period is closed.
func (d *inFlight) relaying(c *conn, s *relay.Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.relayed[c]; !ok {
		return
	}
	if d.forced {
		s.Close()
	}
	d.relayed[c] = s
}

func (d *inFlight) untrack(c *conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.relayed, c)
}

// closeAll ends every connection, those still connecting their upstream too, and
// refuses those still being set up. It returns how many it cut.
func (d *inFlight) closeAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forced = true
	for _, s := range d.relayed {
		if s != nil {
			s.Close() // nil: relaying, on its way, closes it
		}
	}
	return len(d.relayed)
}

// Shutdown stops accepting on every line, waits for open connections to finish until
// ctx ends (the grace period), then closes those left. It returns how many it cut.
func (f *Forwarder) Shutdown(ctx context.Context) int {
	if f.inFlight == nil {
		return 0 // never applied: nothing to drain
	}
	f.mu.Lock()
	for _, l := range f.lines {
		l.close()
	}
	f.mu.Unlock()
	return f.inFlight.handlers.Wait(ctx, f.inFlight.closeAll)
}
