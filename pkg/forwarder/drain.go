package forwarder

import (
	"context"
	"net"
	"sync"
	"time"
)

// drain counts the connections being handled and holds both ends of each relayed one,
// so Shutdown can wait for them and, once the grace period is over, close them.
type drain struct {
	mu       sync.Mutex
	handlers int
	conns    map[*net.TCPConn]struct{}
	forced   bool // the grace period is over: close whatever is still being set up
	// dials is cancelled when the grace period is over, so a connection still dialling
	// does not hold the exit up for the dial timeout.
	dials       context.Context
	cancelDials context.CancelFunc
}

func newDrain() *drain {
	d := &drain{conns: map[*net.TCPConn]struct{}{}}
	d.dials, d.cancelDials = context.WithCancel(context.Background())
	return d
}

func (d *drain) started() {
	d.mu.Lock()
	d.handlers++
	d.mu.Unlock()
}

func (d *drain) done() {
	d.mu.Lock()
	d.handlers--
	d.mu.Unlock()
}

func (d *drain) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handlers
}

// track registers a relayed connection's two ends; after the grace period it closes
// them instead and returns false.
func (d *drain) track(conns ...*net.TCPConn) bool {
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

func (d *drain) untrack(conns ...*net.TCPConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range conns {
		delete(d.conns, c)
	}
}

// closeAll ends every relayed connection and refuses those still being set up. It
// returns how many relayed connections it cut.
func (d *drain) closeAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forced = true
	d.cancelDials()
	for c := range d.conns {
		c.Close()
	}
	return len(d.conns) / 2
}

// drainPoll is how often Shutdown looks whether the last connection has ended.
const drainPoll = 20 * time.Millisecond

// Shutdown stops accepting on every line, waits for open connections to finish until
// ctx ends (the grace period), then closes those left. It returns how many it cut.
func (f *Forwarder) Shutdown(ctx context.Context) int {
	if f.drain == nil {
		return 0 // never applied: nothing to drain
	}
	f.mu.Lock()
	for _, l := range f.lines {
		l.close()
	}
	f.mu.Unlock()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	cut, graceOver := 0, ctx.Done()
	for f.drain.pending() > 0 {
		select {
		case <-graceOver:
			cut, graceOver = f.drain.closeAll(), nil
		case <-tick.C:
		}
	}
	return cut
}
