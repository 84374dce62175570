package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// copyBuffer is the size of copy's user-space reads. A read that fills one means a
// bulk transfer, which then goes over splice(2).
const copyBuffer = 16 << 10

// buffers lend copy a buffer for one read and its write.
var buffers = sync.Pool{New: func() any { b := make([]byte, copyBuffer); return &b }}

// copyStream copies src to dst until src's end, as io.Copy does, but starts with
// read(2) and write(2) and moves to splice(2) once a read fills a buffer. For the few
// bytes of a request, a greeting or a small reply, a splice through a pipe costs twice
// the kernel time of a read and a write (measured at thousands of new connections a
// second); for bulk data splice keeps the bytes out of user space. HAProxy's
// splice-auto makes the same bet. The buffer is taken only once src is readable, so a
// quiet connection holds none.
//
// Each turn reads what src has queued before writing it, so a stream whose end is
// already queued behind its last bytes (a server that answers and closes) is seen to
// end before those bytes are written: they are then sent with MSG_MORE, and the FIN
// that follows (CloseWrite, or Close) leaves in the same segment. That is two packets
// fewer on the client's side of every such connection: the FIN on its own and the
// ACK of the data. The write happens inside the read callback, so that after it the
// wait for more data continues the same RawConn.Read: starting a new one would reset
// the poller's readiness and cost a read(2) that can only say EAGAIN.
func copyStream(dst, src *net.TCPConn) (int64, error) {
	raw, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		written           int64
		end, full         bool
		readErr, writeErr error
	)
	err = raw.Read(func(fd uintptr) bool {
		buf := buffers.Get().(*[]byte)
		var n int
		n, end, readErr = readQueued(int(fd), *buf)
		if n > 0 {
			var w int
			w, writeErr = send(dst, (*buf)[:n], end)
			written += int64(w)
		}
		buffers.Put(buf) // waiting below holds no buffer
		full = n == copyBuffer
		return end || full || readErr != nil || writeErr != nil
	})
	switch {
	case err != nil:
		return written, err
	case writeErr != nil:
		return written, writeErr
	case readErr != nil:
		// As net.Conn's Read reports it, so logs keep the connection.
		return written, &net.OpError{Op: "read", Net: "tcp", Source: src.LocalAddr(), Addr: src.RemoteAddr(), Err: os.NewSyscallError("read", readErr)}
	case end:
		return written, nil
	}
	// A full buffer: bulk data, which splice(2) moves from here on.
	spliced, err := io.Copy(dst, src)
	return written + spliced, err
}

// readQueued reads what the socket fd has queued into buf: until buf is full, nothing
// more is queued (n may then be 0), the stream ends (end) or a read fails.
func readQueued(fd int, buf []byte) (n int, end bool, err error) {
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return n, false, nil
		case err != nil:
			return n, false, err
		case m == 0:
			return n, true, nil
		default:
			n += m
		}
	}
	return n, false, nil
}

// send writes p to c. With last set, p is the stream's last data: MSG_MORE holds it
// for the FIN that the caller's CloseWrite or Close adds at once (session.oneWay,
// session.finish), so both go in one segment.
func send(c *net.TCPConn, p []byte, last bool) (int, error) {
	if !last {
		return c.Write(p)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int
	var sendErr error
	err = raw.Write(func(fd uintptr) bool {
		for sent < len(p) {
			n, err := unix.SendmsgN(int(fd), p[sent:], nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			switch {
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return false // wait until writable
			case err != nil:
				sendErr = err
				return true
			default:
				sent += n
			}
		}
		return true
	})
	if err == nil && sendErr != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("sendmsg", sendErr)}
	}
	return sent, err
}

// isClosed reports an error that is an ordinary end: the connection closed (by the
// other direction or the idle timer) or the stream ended.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
