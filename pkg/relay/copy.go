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
func copyStream(dst, src *net.TCPConn) (int64, error) {
	raw, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	var written int64
	for {
		var (
			buf     *[]byte
			n       int
			readErr error
		)
		err := raw.Read(func(fd uintptr) bool {
			buf = buffers.Get().(*[]byte)
			for {
				n, readErr = unix.Read(int(fd), *buf)
				if readErr != unix.EINTR {
					break
				}
			}
			if readErr == unix.EAGAIN {
				buffers.Put(buf)
				return false // wait until readable, holding no buffer
			}
			return true
		})
		if err != nil {
			return written, err
		}
		if readErr != nil || n == 0 {
			buffers.Put(buf)
			if readErr != nil {
				// As net.Conn's Read reports it, so logs keep the connection.
				return written, &net.OpError{Op: "read", Net: "tcp", Source: src.LocalAddr(), Addr: src.RemoteAddr(), Err: os.NewSyscallError("read", readErr)}
			}
			return written, nil // end of stream
		}
		w, writeErr := dst.Write((*buf)[:n])
		written += int64(w)
		buffers.Put(buf)
		if writeErr != nil {
			return written, writeErr
		}
		if n == copyBuffer {
			spliced, err := io.Copy(dst, src) // *TCPConn to *TCPConn: splice(2)
			return written + spliced, err
		}
	}
}

// isClosed reports an error that is an ordinary end: the connection closed (by the
// other direction or the idle timer) or the stream ended.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
