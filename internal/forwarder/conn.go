package forwarder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/egress-router/egress-router/internal/relay"
)

// conn is one accepted connection, from its accept on a relay loop to its end. Its
// methods run on that loop, so they only count, log (the rate-limited warning, debug
// lines) and start non-blocking connects: nothing that waits.
type conn struct {
	f      *Forwarder
	l      *line
	t      *target
	client netip.AddrPort
	// The upstream connect: the address being dialled, the attempts left and the
	// errors of those that failed.
	upstream netip.AddrPort
	left     int
	errs     []error
	relayed  bool // the upstream connected: the relay's accounting applies
}

// accepted handles a connection a line's listener accepted, in the order the
// listener, the drain and the line always took: the connection caps, the drain, the
// count, the line's current target; then the relay connects it.
func (f *Forwarder) accepted(l *line, ac *relay.Accepted) {
	client := ac.RemoteAddr()
	if !f.Limiter.Acquire(client.Addr()) {
		ac.Close()
		f.refusedOverCap(client.Addr())
		return
	}
	if !f.inFlight.started() {
		ac.Close() // accepted as Shutdown began
		f.Limiter.Release(client.Addr())
		return
	}
	c := &conn{f: f, l: l, client: client}
	handedOver := false
	defer func() {
		if !handedOver {
			f.Limiter.Release(client.Addr())
			f.inFlight.done()
		}
	}()
	defer f.survive(l, ac.Close)
	l.stats.total.Add(1)
	c.t = l.serving.Load()
	c.left = min(maxDialAttempts, max(len(c.t.dest.Addrs()), 1))
	if !f.inFlight.track(c) {
		ac.Close() // past the grace period
		return
	}
	handedOver = true // from here on ended does the accounting; nothing between can panic
	up := &relay.Upstream{Start: c.connect, Timeout: c.t.dialer.ConnectTimeout(), Connected: c.connected}
	s := f.Relay.Connect(ac, up, c.ended)
	f.inFlight.relaying(c, s)
}

// connect starts connecting to the line's destination, stepping to the next address
// when one fails (failed: the previous attempt's error); a failed address is skipped
// by the next connections too.
func (c *conn) connect(failed error) (int, error) {
	t := c.t
	if failed != nil {
		t.dest.Refused(c.upstream.Addr())
		c.errs = append(c.errs, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.upstream), Err: failed})
	}
	for ; c.left > 0; c.left-- {
		a, ok := t.dest.Pick(t.dialer.Usable)
		if !ok {
			return -1, errNoAddress
		}
		c.upstream = netip.AddrPortFrom(a, t.rule.RemotePort)
		fd, err := t.dialer.Start(c.upstream)
		if err == nil {
			c.left--
			return fd, nil
		}
		t.dest.Refused(a)
		c.errs = append(c.errs, err)
	}
	return -1, fmt.Errorf("dial %s: %w", t.rule.Host, errors.Join(c.errs...))
}

// connected counts the connection as relayed.
func (c *conn) connected() {
	c.relayed = true
	c.l.stats.active.Add(1)
	// At the usual level these debug lines are dropped; asked first, so that the rule
	// and the counts are not boxed for the logger on every connection for nothing.
	if c.f.debugging() {
		c.f.Log.Debug("relaying", "line", c.t.rule, "client", c.client, "upstream", c.upstream)
	}
}

// ended finishes the connection's accounting: a relay that ended, or a connection
// closed for want of a destination.
func (c *conn) ended(res relay.Result, err error) {
	f, l := c.f, c.l
	defer f.inFlight.done()
	defer f.Limiter.Release(c.client.Addr())
	defer f.survive(l, nil)
	f.inFlight.untrack(c)
	if !c.relayed {
		switch {
		case errors.Is(err, relay.ErrClosedConnecting):
			// Cut by Shutdown past its grace period while still connecting: counted
			// as cut there, and no fault of the destination's.
			return
		case errors.Is(err, errNoAddress):
			l.stats.noAddress.Add(1)
		default:
			l.stats.dialErrors.Add(1)
		}
		f.logDialFailure(c.t, c.client, err)
		return
	}
	l.stats.sent.Add(res.Sent)
	l.stats.received.Add(res.Received)
	l.stats.active.Add(-1)
	if f.debugging() {
		f.Log.Debug("relay ended", "line", c.t.rule, "client", c.client, "sent", res.Sent, "received", res.Received, "error", err)
	}
}
