package forwarder

import (
	"context"
	"net"
	"sync"

	"github.com/egress-router/egress-router/internal/drain"
)

// inFlight counts the connections being handled and holds both ends of each relayed
// one, so Shutdown can wait for them and, once the grace period is over, close them.
type inFlight struct {
	handlers drain.Group
	mu       sync.Mutex
	conns    map[*net.TCPConn]struct{}
	forced   bool // the grace period is over: close whatever is still being set up
	// dials is cancelled when the grace period is over, so a connection still dialling
	// does not hold the exit up for the dial timeout.
	dials       context.Context
	cancelDials context.CancelFunc
}

func newInFlight() *inFlight {
	d := &inFlight{conns: map[*net.TCPConn]struct{}{}}
	d.dials, d.cancelDials = context.WithCancel(context.Background())
	return d
}

// started counts a connection being handled, or reports false once Shutdown began:
// the caller closes it.
func (d *inFlight) started() bool { return d.handlers.Start() }

func (d *inFlight) done() { d.handlers.Done() }

// track registers a relayed connection's two ends; after the grace period it closes
// them instead and returns false.
func (d *inFlight) track(conns ...*net.TCPConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.forced {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		d.conns[c] = struct{}{}
	}
	return true
}

func (d *inFlight) untrack(conns ...*net.TCPConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range conns {
		delete(d.conns, c)
	}
}

// closeAll ends every relayed connection and refuses those still being set up. It
// returns how many relayed connections it cut.
func (d *inFlight) closeAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forced = true
	d.cancelDials()
	for c := range d.conns {
		c.Close()
	}
	return len(d.conns) / 2
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
