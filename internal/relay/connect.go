package relay

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// ErrConnectTimeout ends a connect that took longer than its Upstream's Timeout.
var ErrConnectTimeout = fmt.Errorf("connect: %w", os.ErrDeadlineExceeded)

// ErrClosedConnecting is what done hears of a session closed (Session.Close) before
// its upstream connected.
var ErrClosedConnecting = errors.New("relay: closed while connecting")

// Upstream is how a loop connects an accepted connection's upstream. A panic in Start
// or Connected ends the session, done hearing of it as an error.
type Upstream struct {
	// Start begins a connect: it returns a non-blocking socket whose connect(2) is
	// under way or done (dialer.Start). failed is the error of the previous attempt,
	// nil at first; Start may try another address then, or return an error, which
	// ends the session with it.
	Start func(failed error) (int, error)
	// Timeout bounds each attempt; the loop enforces it.
	Timeout time.Duration
	// Connected, if set, runs on the loop once the upstream is connected, before a
	// byte is relayed.
	Connected func()
}

// Connect relays c, whose upstream the loop connects with up, and calls done as
// RunThen does once the relay ends, or once Start gives up (with its error) if the
// upstream never connected. It may only be called from Accept.Accepted, on c's loop,
// which then owns c. Client data that arrives while the upstream connects waits in
// the client's socket.
func (r Relay) Connect(c *Accepted, up *Upstream, done func(Result, error)) *Session {
	l := c.l
	s := &Session{loop: l, idleTimeout: r.IdleTimeout, done: done, up: up}
	s.init()
	s.ends[0].fd, c.fd = c.fd, -1
	l.register(s)
	if !s.finished {
		s.connect(l, nil)
	}
	return s
}

// dialEntry is a connect attempt under way, for the loop's timeout check.
type dialEntry struct {
	s        *Session
	attempt  uint32
	deadline int64
}

// connect starts the next attempt, after the one that failed (nil at first).
func (s *Session) connect(l *loop, failed error) {
	up := &s.ends[1]
	if up.fd >= 0 {
		l.forget(up)
		sockio.Close(up.fd)
		up.fd = -1
		up.readable, up.writable = false, false
	}
	fd, err := -1, error(nil)
	if perr := guarded("Start", func() { fd, err = s.up.Start(failed) }); perr != nil {
		fd, err = -1, perr
	}
	if err != nil {
		s.finish(l, err)
		return
	}
	up.fd = fd
	s.attempt++
	if err := l.watch(up); err != nil {
		s.finish(l, err)
		return
	}
	deadline := l.now + int64(s.up.Timeout)
	l.dials = append(l.dials, dialEntry{s, s.attempt, deadline})
	if l.nextDialCheck == 0 || deadline < l.nextDialCheck {
		l.nextDialCheck = deadline
	}
}

// connectEvent handles an event of the upstream socket while it connects: writable
// means connected, an error (SO_ERROR) that the attempt failed.
func (s *Session) connectEvent(l *loop, events uint32) {
	if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		errno, err := unix.GetsockoptInt(s.ends[1].fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		}
		if err == nil {
			err = unix.ECONNRESET // hung up without an error: cannot be a connection
		}
		s.connect(l, os.NewSyscallError("connect", err))
		return
	}
	if events&unix.EPOLLOUT == 0 {
		return
	}
	up := s.up
	s.up = nil
	s.started = l.now
	s.ends[1].note(events)
	l.popDials()
	if up.Connected != nil {
		if err := guarded("Connected", up.Connected); err != nil {
			s.finish(l, err)
			return
		}
	}
	s.pump(l)
}

// guarded runs f, a caller's callback, on the loop, a panic in it returned as an
// error: unrecovered, it would end the process, and every connection of every loop
// with it.
func guarded(what string, f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("relay: panic in %s: %v", what, p)
		}
	}()
	f()
	return nil
}

// connecting reports whether s's upstream is not connected yet.
func (s *Session) connecting() bool { return s.up != nil }

// popDials drops the attempts at the head of the queue that are over (connected,
// failed or their session closed): connects end about in the order they began, so
// the queue stays about as long as the number of connects under way.
func (l *loop) popDials() {
	n := 0
	for n < len(l.dials) && l.dials[n].over() {
		n++
	}
	if n == 0 {
		return
	}
	clear(l.dials[:n])
	l.dials = append(l.dials[:0], l.dials[n:]...)
	if len(l.dials) == 0 {
		l.nextDialCheck = 0
	}
}

func (d *dialEntry) over() bool {
	return d.s.finished || d.s.up == nil || d.s.attempt != d.attempt
}

// expireDials fails the attempts past their deadline and drops those that are over.
func (l *loop) expireDials() {
	l.nextDialCheck = 0
	var expired []*Session
	kept := l.dials[:0]
	for _, d := range l.dials {
		switch {
		case d.over():
		case l.now >= d.deadline:
			expired = append(expired, d.s)
		default:
			kept = append(kept, d)
			if l.nextDialCheck == 0 || d.deadline < l.nextDialCheck {
				l.nextDialCheck = d.deadline
			}
		}
	}
	clear(l.dials[len(kept):])
	l.dials = kept
	for _, s := range expired {
		if !s.finished && s.up != nil {
			s.connect(l, ErrConnectTimeout)
		}
	}
}
