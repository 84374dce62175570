// Package relay moves bytes both ways between two TCP connections: the DNS proxy's
// forwarding and the HTTP proxy's CONNECT tunnels. Both ends stay raw *net.TCPConn so
// bulk data moves with splice(2) and never enters user space (small messages take
// read and write, see copyStream). A half-close on one side is passed on, so one
// direction's FIN does not cut the other.
package relay

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
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
// closes both. The error joins those of the two directions that are not an ordinary
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

// RunThen relays as Run does, but returns as soon as the caller's direction
// (upstream to client) has ended, and calls done, on whichever goroutine ends last,
// once both directions have and both connections are closed. The other direction runs
// on a spare goroutine (Go). Nobody waits for the other direction to end: a caller
// whose direction ends first (a server that answered and closed) is free at once
// rather than parked until the client hangs up, one goroutine switch less per
// connection. done receives what Run would return.
func (r Relay) RunThen(client, upstream *net.TCPConn, done func(Result, error)) {
	s := &session{client: client, upstream: upstream, done: done}
	if r.IdleTimeout > 0 {
		s.idleStop = make(chan struct{})
		go closeWhenIdle(r.IdleTimeout, s.idleStop, client, upstream)
	}
	Go(func() { s.oneWay(upstream, client, &s.res.Sent, &s.sentErr) })
	s.oneWay(client, upstream, &s.res.Received, &s.receivedErr)
}

// session is one relayed connection pair. Each direction writes only its own count
// and error; the last one to end reads both, after the atomic ended counts it in.
type session struct {
	client, upstream     *net.TCPConn
	res                  Result
	sentErr, receivedErr error
	ended                atomic.Int32
	idleStop             chan struct{} // nil without an idle timeout
	done                 func(Result, error)
}

// oneWay copies src to dst, then passes src's end on as dst's write half-close. If the
// copy fails (a reset), both connections are closed so the other direction ends too.
// The direction that ends first half-closes; the last one leaves its FIN to the Close
// that follows at once (every byte has been read both ways, so close(2) sends a FIN,
// not a reset), one shutdown(2) less per connection, and finishes the session. The
// accounting is deferred so that a panic in the caller's direction, on its way to the
// caller's recover, still ends the other direction and the session.
func (s *session) oneWay(dst, src *net.TCPConn, moved *int64, failed *error) {
	clean := false
	defer func() {
		if !clean {
			dst.Close()
			src.Close()
		}
		if s.ended.Add(1) == 1 {
			if clean {
				dst.CloseWrite()
			}
			return
		}
		s.finish()
	}()
	n, err := copyStream(dst, src)
	*moved = n
	if err != nil && !isClosed(err) {
		*failed = err
		return
	}
	clean = true
}

// finish closes both connections and reports to done; the last direction calls it.
func (s *session) finish() {
	s.client.Close()
	s.upstream.Close()
	if s.idleStop != nil {
		close(s.idleStop)
	}
	s.done(s.res, errors.Join(s.sentErr, s.receivedErr))
}

// closeWhenIdle polls the kernel's per-socket "last data received" clock (TCP_INFO),
// which keeps working while splice moves the data, and closes both connections once
// neither side has received anything for timeout.
func closeWhenIdle(timeout time.Duration, done <-chan struct{}, conns ...*net.TCPConn) {
	tick := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		idle := true
		for _, c := range conns {
			if sinceLastData(c) < timeout {
				idle = false
			}
		}
		if idle {
			for _, c := range conns {
				c.Close()
			}
			return
		}
	}
}

// sinceLastData is how long ago the socket last received data; 0 when unknown, which
// counts as active.
func sinceLastData(c *net.TCPConn) time.Duration {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var last time.Duration
	raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			last = time.Duration(info.Last_data_recv) * time.Millisecond
		}
	})
	return last
}
