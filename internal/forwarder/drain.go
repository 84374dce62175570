package forwarder

import (
	"context"
	"net"
	"sync"

	"github.com/egress-router/egress-router/internal/drain"
	"github.com/egress-router/egress-router/internal/relay"
)

// inFlight counts the connections being handled and holds each relayed one, so
// Shutdown can wait for them and, once the grace period is over, close them.
type inFlight struct {
	handlers drain.Group
	mu       sync.Mutex
	// relayed holds each relayed connection by its client end: its relay session, or
	// nil while it is being handed to the relay (closing the client end then ends it).
	relayed map[*net.TCPConn]*relay.Session
	forced  bool // the grace period is over: close whatever is still being set up
	// dials is cancelled when the grace period is over, so a connection still dialling
	// does not hold the exit up for the dial timeout.
	dials       context.Context
	cancelDials context.CancelFunc
}

func newInFlight() *inFlight {
	d := &inFlight{relayed: map[*net.TCPConn]*relay.Session{}}
	d.dials, d.cancelDials = context.WithCancel(context.Background())
	return d
}

// started counts a connection being handled, or reports false once Shutdown began:
// the caller closes it.
func (d *inFlight) started() bool { return d.handlers.Start() }

func (d *inFlight) done() { d.handlers.Done() }

// track registers a connection about to be relayed; after the grace period it closes
// both ends instead and returns false.
func (d *inFlight) track(client, upstream *net.TCPConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.forced {
		client.Close()
		upstream.Close()
		return false
	}
	d.relayed[client] = nil
	return true
}

// relaying records the session that relays client, so closeAll can end it: the
// relay owns the sockets now, and closing the connections no longer would. A session
// that has ended already (untracked) is not recorded; one handed over after the grace
// period is closed.
func (d *inFlight) relaying(client *net.TCPConn, s *relay.Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.relayed[client]; !ok {
		return
	}
	if d.forced {
		s.Close()
	}
	d.relayed[client] = s
}

func (d *inFlight) untrack(client *net.TCPConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.relayed, client)
}

// closeAll ends every relayed connection and refuses those still being set up. It
// returns how many relayed connections it cut.
func (d *inFlight) closeAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forced = true
	d.cancelDials()
	for client, s := range d.relayed {
		if s != nil {
			s.Close()
		} else {
			client.Close() // the relay, taking it, finds it closed and ends at once
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
