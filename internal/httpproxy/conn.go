package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/relay"
	"github.com/egress-router/egress-router/internal/sockio"
)

// clientConn is one client connection: a loop of requests, or one CONNECT tunnel.
type clientConn struct {
	s    *Server
	ln   *connlimit.Listener
	tcp  *net.TCPConn
	rw   deadlineConn
	peer string // the client's address, for logs
	br   *bufio.Reader
	bw   *bufio.Writer
	req  head
	resp head

	// last is the target of the previous request, with its authority bytes: a
	// keep-alive client repeating the authority skips canonicalisation.
	lastAuthority []byte
	last          target

	// up is the upstream of the previous request, or the tunnel's other end; this
	// client's alone. Only the serving goroutine changes it, under mu (setUp), so
	// abort may read it from another.
	up *upstream
	// tunnelled is the relay of a CONNECT tunnel, which owns both sockets once set.
	tunnelled *relay.Session

	mu     sync.Mutex
	idle   bool // waiting for a request; Shutdown may close it
	closed bool
}

func newClientConn(s *Server, ln *connlimit.Listener, c *net.TCPConn) *clientConn {
	cc := &clientConn{s: s, ln: ln, tcp: c, peer: clientAddr(c).String()}
	cc.rw.init(c, s.IdleTimeout)
	cc.br = bufio.NewReaderSize(&cc.rw, 4<<10)
	cc.bw = bufio.NewWriterSize(&cc.rw, 4<<10)
	return cc
}

// serve handles requests until the client is done, a request fails, or a CONNECT turns
// the connection into a tunnel.
func (c *clientConn) serve() {
	for c.waitForRequest() && c.readRequest() {
		if string(c.req.start[0]) == "CONNECT" {
			c.tunnel()
			return
		}
		if !c.forward() {
			return
		}
	}
}

// readRequest reads a request head within the header timeout and reports whether it is
// one to serve; a malformed, too large or too slow one is answered with its error.
func (c *clientConn) readRequest() bool {
	c.rw.readBy = time.Now().Add(c.s.HeaderTimeout)
	err := c.req.read(c.br, c.s.MaxHeaderBytes, false)
	c.rw.readBy = time.Time{}
	switch {
	case err == nil && isToken(c.req.start[0]):
		return true
	case err == nil:
		c.fail(400)
	case c.s.draining.Load() || errors.Is(err, io.EOF):
	case isTimeout(err):
		// A head that started but did not finish in time gets an answer; empty lines
		// between requests do not count as a start.
		if len(c.req.buf) > 0 {
			c.fail(408)
		}
	default:
		c.fail(statusForHeadError(err))
	}
	return false
}

// waitForRequest waits up to the idle timeout for the first byte of a request. While
// it waits, Shutdown may close the connection.
func (c *clientConn) waitForRequest() bool {
	c.mu.Lock()
	if c.s.draining.Load() {
		c.mu.Unlock()
		return false
	}
	c.idle = true
	c.mu.Unlock()
	_, err := c.br.Peek(1)
	c.mu.Lock()
	c.idle = false
	c.mu.Unlock()
	return err == nil
}

// closeIfIdle ends the wait of a connection between requests.
func (c *clientConn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.tcp.CloseRead()
	}
}

// abort closes the connection and its upstream from outside the serving goroutine.
func (c *clientConn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tcp.Close()
	if c.up != nil {
		c.up.tcp.Close()
	}
	if c.tunnelled != nil {
		c.tunnelled.Close()
	}
}

// setUp replaces the upstream (nil: none).
func (c *clientConn) setUp(u *upstream) {
	c.mu.Lock()
	c.up = u
	c.mu.Unlock()
}

func (c *clientConn) close() {
	c.closeUpstream()
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !closed {
		c.tcp.Close()
		c.ln.Release(c.tcp)
	}
}

// fail answers with an error status and closes the connection gracefully: the write
// side first, then what the client still sends is read and dropped for a moment (never
// parsed), so the answer is not lost to a reset caused by unread data.
func (c *clientConn) fail(status int) {
	c.bw.WriteString(errorResponse(status))
	c.bw.Flush()
	c.tcp.CloseWrite()
	c.tcp.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.tcp, lingerBytes)
}

const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// deadlineConn sets a deadline before each read and write: a read's is readBy when set
// (a head must arrive whole by then, so a slow trickle cannot hold a connection) or
// else the idle timeout from now (a body must keep moving); a write's is always the
// idle timeout. It is not an embedding of the conn on purpose: bufio would find the
// conn's ReadFrom through it and bypass the deadlines.
//
// Its reads and writes are sockio's raw system calls inside the conn's RawConn, which
// still waits in Go's poller and honours the deadlines: the keep-alive path makes
// four reads and writes per request, and with the net package's each woke the
// runtime's sysmon (see internal/sockio). A read is tried before it waits, as the net
// package's is: RawConn's Read forgets that the poller saw the socket readable before
// its first try, so waiting first could sleep through a response already queued. The
// tries that find nothing, about 1.8 of a request's 6.4 system calls at 16 clients,
// are the price. The call's buffer and outcome are fields, and the callbacks are
// bound once in init, so that a call allocates nothing.
//
// It also counts the bytes each way, for the metrics, and remembers whether the
// connection failed, to tell which side of a copy broke.
type deadlineConn struct {
	c             *net.TCPConn
	raw           syscall.RawConn
	idle          time.Duration
	readBy        time.Time
	read, written int64
	failed        bool

	p                  []byte // the buffer of the call in progress
	done               int    // how much of p the call has read or written
	callErr            error  // the call's error other than EAGAIN
	readSome, writeAll func(fd uintptr) bool
}

func (d *deadlineConn) init(c *net.TCPConn, idle time.Duration) {
	*d = deadlineConn{c: c, idle: idle}
	// SyscallConn of a *net.TCPConn fails only on a nil conn.
	d.raw, _ = c.SyscallConn()
	d.readSome, d.writeAll = d.readOnce, d.writeOut
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	by := d.readBy
	if by.IsZero() {
		by = time.Now().Add(d.idle)
	}
	d.c.SetReadDeadline(by)
	n, err := d.call(d.raw.Read, d.readSome, p)
	if n == 0 && err == nil {
		err = io.EOF
	}
	d.read += int64(n)
	d.failed = d.failed || (err != nil && err != io.EOF)
	return n, err
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(d.idle))
	n, err := d.call(d.raw.Write, d.writeAll, p)
	d.written += int64(n)
	d.failed = d.failed || err != nil
	return n, err
}

// call runs one read or write of p through the RawConn method wait, which calls f
// until it returns true and waits for the socket between calls.
func (d *deadlineConn) call(wait func(func(uintptr) bool) error, f func(uintptr) bool, p []byte) (int, error) {
	d.p, d.done, d.callErr = p, 0, nil
	err := wait(f)
	n := d.done
	if err == nil {
		err = d.callErr
	}
	d.p, d.callErr = nil, nil
	return n, err
}

// readOnce reads what is queued, up to len(p); false (wait) if nothing is.
func (d *deadlineConn) readOnce(fd uintptr) bool {
	n, err := sockio.Read(int(fd), d.p)
	if err == unix.EAGAIN {
		return false
	}
	d.done = n
	if err != nil {
		d.callErr = d.opError("read", err)
	}
	return true
}

// writeOut writes all of p; false (wait until writable) while the socket's buffer is
// full.
func (d *deadlineConn) writeOut(fd uintptr) bool {
	for d.done < len(d.p) {
		n, err := sockio.Write(int(fd), d.p[d.done:])
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			d.callErr = d.opError("write", err)
			return true
		}
		d.done += n
	}
	return true
}

// opError is err as the net package reports it, so logs keep the connection's
// addresses.
func (d *deadlineConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: d.c.LocalAddr(), Addr: d.c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
