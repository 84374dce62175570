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
// closes both. The error is the first one that is not an ordinary end of stream.
// The upstream-to-client direction runs in the caller's goroutine: one goroutine less
// per connection is both memory per held tunnel and a hand-off less per new one. The
// other direction runs on a spare goroutine (Go).
func (r Relay) Run(client, upstream *net.TCPConn) (Result, error) {
	var (
		res     Result
		sentErr error
		sent    = make(chan struct{})
		ended   atomic.Int32
	)
	Go(func() {
		defer close(sent)
		res.Sent, sentErr = oneWay(upstream, client, &ended)
	})
	if r.IdleTimeout > 0 {
		done := make(chan struct{})
		defer close(done)
		go closeWhenIdle(r.IdleTimeout, done, client, upstream)
	}
	received, receivedErr := oneWay(client, upstream, &ended)
	<-sent
	res.Received = received
	client.Close()
	upstream.Close()
	return res, errors.Join(sentErr, receivedErr)
}

// oneWay copies src to dst, then passes src's end on as dst's write half-close. If the
// copy fails (a reset), both connections are closed so the other direction ends too.
// ended counts the directions that have ended: the last one leaves its FIN to the
// Close that follows at once (every byte has been read both ways, so close(2) sends a
// FIN, not a reset), one shutdown(2) less per connection.
func oneWay(dst, src *net.TCPConn, ended *atomic.Int32) (int64, error) {
	n, err := copyStream(dst, src)
	if err != nil && !isClosed(err) {
		dst.Close()
		src.Close()
		return n, err
	}
	if ended.Add(1) == 1 {
		dst.CloseWrite()
	}
	return n, nil
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
