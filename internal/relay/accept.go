package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/sockio"
)

// Listener accepts a port's connections in the event loops themselves, so a
// connection never passes through Go's poller: one listening socket per loop, all
// bound to the same address with SO_REUSEPORT. The kernel spreads new connections
// over the sockets, and each loop relays those it accepted, with no hand-over from
// one goroutine or loop to another. (One shared socket with EPOLLEXCLUSIVE would
// need the loops' nested epoll descriptors to take turns, and every accept would
// still hand the connection to some loop.)
type Listener struct {
	acceptors []*acceptor
}

// Accept configures a Listener.
type Accept struct {
	// Control, if set, runs on each listening socket before bind, as in
	// net.ListenConfig; accepted sockets inherit its options (keepalive and the like).
	// Not SO_LINGER: the loops close sockets with a raw close(2) (internal/sockio),
	// which must not wait.
	Control func(network, address string, c syscall.RawConn) error
	// Accepted receives each accepted connection, on its loop: it must be quick and
	// must not block. It either refuses the connection (Close) or relays it (Connect).
	Accepted func(*Accepted)
	// Failed hears of accept errors, which are waited out (out of descriptors).
	Failed func(error)
}

// Listen opens the listening sockets on address (host:port, a fixed port), one per
// loop; they accept once Start hands them to the loops (until then, connections wait
// in the sockets' queues).
func (a Accept) Listen(address string) (*Listener, error) {
	all, err := allLoops()
	if err != nil {
		return nil, err
	}
	ln := &Listener{}
	lc := net.ListenConfig{KeepAlive: -1, Control: a.control}
	for _, l := range all {
		gl, err := lc.Listen(context.Background(), "tcp", address)
		if err != nil {
			ln.Close()
			return nil, err
		}
		fd, err := detach(gl.(*net.TCPListener))
		gl.Close()
		if err != nil {
			ln.Close()
			return nil, err
		}
		ac := &acceptor{Accept: a, l: l}
		ac.end.fd = fd
		ln.acceptors = append(ln.acceptors, ac)
	}
	return ln, nil
}

// Start starts accepting.
func (ln *Listener) Start() {
	for _, ac := range ln.acceptors {
		ac.l.request(request{a: ac})
	}
}

// control sets SO_REUSEPORT, which lets the loops' sockets share the port (and still
// refuses a port another program holds), and TCP_NODELAY, which accepted sockets
// inherit, as the net package sets it on each; then runs Accept's Control.
func (a Accept) control(network, address string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1),
		)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("listener %s: %w", address, os.NewSyscallError("setsockopt", err))
	}
	if a.Control != nil {
		return a.Control(network, address, c)
	}
	return nil
}

// Close stops accepting: when it returns, every socket is closed (connections still
// in their accept queues are reset by the kernel, as on any listener's close).
func (ln *Listener) Close() {
	done := make(chan struct{}, len(ln.acceptors))
	for _, ac := range ln.acceptors {
		ac.l.request(request{a: ac, close: true, closed: done})
	}
	for range ln.acceptors {
		<-done
	}
}

// acceptor is one loop's listening socket.
type acceptor struct {
	Accept
	l       *loop
	end     end // in the loop's table, as a session's sockets are
	backoff time.Duration
	retryAt int64 // loop clock: accept again then; 0: not backing off
	closed  bool
}

// Accepted is a connection a Listener accepted, handed to Accept.Accepted.
type Accepted struct {
	fd   int
	peer netip.AddrPort
	l    *loop
}

// RemoteAddr is the client's address, IPv4-mapped addresses unmapped.
func (c *Accepted) RemoteAddr() netip.AddrPort { return c.peer }

// Close refuses the connection.
func (c *Accepted) Close() {
	if c.fd >= 0 {
		sockio.Close(c.fd)
		c.fd = -1
	}
}

// acceptAll accepts until the queue is empty, or backs off on an error other than
// a connection that went away before it was accepted.
func (ac *acceptor) acceptAll() {
	if ac.closed || ac.retryAt != 0 {
		return // backing off: the sweep comes back at retryAt
	}
	for {
		c := Accepted{l: ac.l}
		var err error
		c.fd, c.peer, err = sockio.Accept(ac.end.fd)
		switch {
		case err == unix.EAGAIN:
			ac.backoff = 0
			return
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != nil:
			ac.wait(err)
			return
		}
		ac.backoff = 0
		ac.accepted(&c)
	}
}

// wait backs off after a failed accept: with no descriptor left, every accept fails
// until a connection ends, and the listener keeps signalling its queued ones.
func (ac *acceptor) wait(err error) {
	if ac.Failed != nil {
		ac.Failed(os.NewSyscallError("accept4", err))
	}
	ac.backoff = connlimit.NextAcceptBackoff(ac.backoff)
	ac.retryAt = ac.l.now + int64(ac.backoff)
	ac.l.sweepWithin(ac.backoff)
}

// retry accepts again once a backoff is over; the sweep calls it.
func (ac *acceptor) retry() {
	if ac.retryAt != 0 && ac.l.now >= ac.retryAt {
		ac.retryAt = 0
		ac.acceptAll()
	}
	if ac.retryAt != 0 {
		ac.l.sweepWithin(time.Duration(ac.retryAt - ac.l.now))
	}
}

// accepted hands c over; a panic in the handler closes c and leaves the loop running.
func (ac *acceptor) accepted(c *Accepted) {
	if guarded("Accepted", func() { ac.Accepted(c) }) != nil {
		c.Close()
	}
}

// close takes the socket out of the loop and closes it.
func (ac *acceptor) close() {
	if ac.closed {
		return
	}
	ac.closed = true
	ac.l.forget(&ac.end)
	unix.Close(ac.end.fd)
	ac.end.fd = -1
}
