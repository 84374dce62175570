// Package connlimit caps how many connections a proxy holds open: in all, and per
// client address, so one pod cannot take every slot. Accepted connections stay raw
// *net.TCPConn — a wrapping type would end splice(2) on the relay path — so the owner
// of a connection calls Release when it closes it, instead of a close hook.
package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limiter counts open connections against a global and a per-client cap. Zero caps are
// unlimited.
type Limiter struct {
	Max       int
	PerClient int

	mu        sync.Mutex
	total     int
	perClient map[netip.Addr]int
}

// Acquire takes a slot for a connection from client, or reports that a cap is full.
func (l *Limiter) Acquire(client netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Max > 0 && l.total >= l.Max {
		return false
	}
	if l.PerClient > 0 && l.perClient[client] >= l.PerClient {
		return false
	}
	if l.perClient == nil {
		l.perClient = map[netip.Addr]int{}
	}
	l.total++
	l.perClient[client]++
	return true
}

// Release gives back the slot of a connection from client.
func (l *Limiter) Release(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perClient[client] - 1; n > 0 {
		l.perClient[client] = n
	} else {
		delete(l.perClient, client)
	}
}

// Listener accepts TCP connections within the Limiter's caps; a connection over a cap
// is closed at once and reported to Rejected (if set). Every connection Accept returns
// is a *net.TCPConn holding a slot: pass it to Release when done with it.
type Listener struct {
	*net.TCPListener
	Limiter  *Limiter
	Rejected func(client netip.Addr)
	// Failed, if set, hears of accept errors Accept waits out (out of file
	// descriptors and the like).
	Failed func(error)
}

// NextAcceptBackoff is the pause after a failed accept (out of descriptors, mostly)
// that followed a pause of prev (0 after a success): from 5 ms, doubling, at most a
// second, so that a listener that keeps signalling neither keeps its acceptor
// spinning nor stalls it for long once the pressure ends. Both acceptors, Listener's
// and the relay's event loops', use it.
func NextAcceptBackoff(prev time.Duration) time.Duration {
	return min(max(2*prev, 5*time.Millisecond), time.Second)
}

// Accept returns the next connection within the caps. It returns an error only once
// the listener is closed; other accept errors it reports to Failed and waits out.
func (l *Listener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		if err != nil {
			if l.Failed != nil {
				l.Failed(err)
			}
			backoff = NextAcceptBackoff(backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		client := ClientAddr(c)
		if l.Limiter.Acquire(client) {
			return c, nil
		}
		c.Close()
		if l.Rejected != nil {
			l.Rejected(client)
		}
	}
}

// Release gives back the slot of a connection this listener accepted.
func (l *Listener) Release(c net.Conn) {
	l.Limiter.Release(ClientAddr(c))
}

// ClientAddr is the remote address of c, unmapped, so a client counts once whether it
// arrived over IPv4 or as an IPv4-mapped IPv6 peer.
func ClientAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
