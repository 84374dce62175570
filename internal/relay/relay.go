// Package relay moves bytes both ways between two TCP connections: the DNS proxy's
// forwarding and the HTTP proxy's CONNECT tunnels. A few event loops (loop.go) do it
// for every relayed connection, so a quiet connection costs no goroutine, no stack
// and no buffer, only its sockets and a few hundred bytes of state. Small messages
// move with read(2) and write(2) through the loop's one buffer; bulk data moves with
// splice(2) through a pipe and never enters user space (flow.go). A half-close on one
// side is passed on, so one direction's FIN does not cut the other.
//
// The HTTP proxy hands over connections it set up itself (RunThen). The DNS proxy
// lets the loops do the whole connection (accept.go, connect.go): each loop accepts
// on its own listening socket of the port and connects the upstream without blocking,
// so a forwarded connection never passes through Go's poller, nor from one goroutine
// to another, and costs no duplicate descriptors.
//
// Why not a library: gnet, cloudwego/netpoll, nbio and evio own the accept, read into
// user-space buffers and expose no fd to splice from (gnet issues #120 and #690); none
// takes two established sockets and relays them without a buffer per connection.
package relay

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// Result is what one relay moved.
type Result struct {
	Sent     int64 // client to upstream
	Received int64 // upstream to client
}

// Relay configures how connections are relayed; the zero value relays until both
// directions end.
type Relay struct {
	// IdleTimeout closes both connections when neither has received data for this long.
	// Zero disables it: long-lived quiet connections (databases) must not be cut.
	IdleTimeout time.Duration
}

// Run relays between client and upstream until both directions have ended, then
// closes both. The error is the one that ended the relay, if it was not an ordinary
// end of stream.
func (r Relay) Run(client, upstream *net.TCPConn) (Result, error) {
	type outcome struct {
		res Result
		err error
	}
	ended := make(chan outcome, 1)
	r.RunThen(client, upstream, func(res Result, err error) { ended <- outcome{res, err} })
	o := <-ended
	return o.res, o.err
}

// RunThen relays as Run does, but returns at once: the relay goes on in an event loop,
// which calls done once both directions have ended and both connections are closed.
// done receives what Run would return. It runs on the loop, which relays other
// connections meanwhile, so it must be quick and must not block; a panic in it is
// recovered and dropped (done recovers its own to log it). It runs on the caller's
// goroutine, before RunThen returns, if the relay cannot start.
//
// client and upstream are closed when RunThen returns (the loop owns duplicates of
// their sockets), so closing them does not end the relay: Close on the returned
// Session does.
func (r Relay) RunThen(client, upstream *net.TCPConn, done func(Result, error)) *Session {
	s := &Session{idleTimeout: r.IdleTimeout, done: done}
	s.init()
	err := s.take(client, upstream)
	var l *loop
	if err == nil {
		l, err = pickLoop()
	}
	if err != nil {
		s.closeFDs()
		s.finished = true
		if errors.Is(err, net.ErrClosed) {
			err = nil // closed before it started: an ordinary end, as a close during the relay is
		}
		done(Result{}, err)
		return s
	}
	s.loop = l
	l.request(request{s: s})
	return s
}

// Session is one relayed connection pair. Only its loop touches its fields, once
// RunThen has handed it over.
type Session struct {
	loop        *loop
	ends        [2]end  // client, upstream
	flows       [2]flow // client to upstream (Sent), upstream to client (Received)
	idleTimeout time.Duration
	started     int64 // loop clock when registered or connected, for the idle timeout
	finished    bool
	queued      bool // in the loop's list of sessions to move on without an event
	done        func(Result, error)
	up          *Upstream // while the upstream connects (Connect); nil once connected
	attempt     uint32    // the upstream connect attempts made
}

// Close ends the relay from outside (a drain's grace period over): both connections
// are closed and done is called as for an ordinary end. It is safe at any time, from
// any goroutine, and does nothing once the relay has ended.
func (s *Session) Close() {
	if s.loop != nil {
		s.loop.request(request{s: s, close: true})
	}
}

func (s *Session) init() {
	s.ends[0].s, s.ends[1].s = s, s
	s.ends[0].fd, s.ends[1].fd = -1, -1
	s.flows[0] = flow{src: &s.ends[0], dst: &s.ends[1], what: "client to upstream"}
	s.flows[1] = flow{src: &s.ends[1], dst: &s.ends[0], what: "upstream to client"}
}

// take moves the two sockets out of Go's poller into the session: each is duplicated
// for the loop and the connection closed.
func (s *Session) take(client, upstream *net.TCPConn) error {
	var errs [2]error
	s.ends[0].fd, errs[0] = detach(client)
	s.ends[1].fd, errs[1] = detach(upstream)
	client.Close()
	upstream.Close()
	return errors.Join(errs[0], errs[1])
}

// detach returns a duplicate of c's socket. It shares the open file, so it is
// non-blocking as Go made it, and outlives c's Close.
func detach(c syscall.Conn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("relay: duplicate the socket: %w", dupErr)
	}
	return fd, nil
}

func (s *Session) closeFDs() {
	for i := range s.ends {
		if s.ends[i].fd >= 0 {
			sockio.Close(s.ends[i].fd)
			s.ends[i].fd = -1
		}
	}
}

func (s *Session) result() Result {
	return Result{Sent: s.flows[0].moved, Received: s.flows[1].moved}
}

// end is one of a session's sockets as its loop sees it: readiness as the
// edge-triggered events last reported it, and the generation its epoll entry carries,
// so an event queued for a socket closed since (whose number may be reused) is known
// stale.
type end struct {
	fd                 int
	gen                uint32
	readable, writable bool
	peerEnded          bool // its FIN (or a hang-up) was reported: read to the end
	s                  *Session
	acceptor           *acceptor // instead of s, for a listening socket
}

// pump moves both flows as far as they go now, passes a finished direction's end on
// as a half-close, and ends the session when both are finished or one fails. A
// direction that finishes first shuts down its write side; the last one leaves its FIN
// to the close that follows at once (every byte has been read both ways, so close(2)
// sends a FIN, not a reset), one shutdown(2) less per connection.
func (s *Session) pump(l *loop) {
	if s.finished || s.connecting() {
		return
	}
	defer func() {
		// A bug in one session must not take the loop, and every other session, down.
		if p := recover(); p != nil && !s.finished {
			s.finish(l, fmt.Errorf("relay: panic: %v", p))
		}
	}()
	more := false
	for i := range s.flows {
		m, err := s.flows[i].move(l)
		if err != nil {
			s.finish(l, err)
			return
		}
		more = more || m
	}
	if s.flows[0].done() && s.flows[1].done() {
		s.finish(l, nil)
		return
	}
	for i := range s.flows {
		if f := &s.flows[i]; f.done() && !f.shut {
			sockio.Shutdown(f.dst.fd, unix.SHUT_WR)
			f.shut = true
		}
	}
	if more && !s.queued {
		s.queued = true
		l.again = append(l.again, s)
	}
}

// finish closes both sockets, gives the pipes back and reports to done.
func (s *Session) finish(l *loop, err error) {
	s.finished = true
	for i := range s.ends {
		l.forget(&s.ends[i])
	}
	s.closeFDs()
	for i := range s.flows {
		l.givePipe(&s.flows[i])
		s.flows[i].held = nil
	}
	if s.idleTimeout > 0 {
		l.timed--
	}
	done := s.done
	s.done = nil
	// A panic in done has no one left to report to: done logs its own if it recovers.
	guarded("done", func() { done(s.result(), err) })
}
