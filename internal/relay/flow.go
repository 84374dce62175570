package relay

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/internal/sockio"
)

// copyBuffer is the size of the loop's user-space reads. A read that fills it means a
// bulk transfer, which then goes over splice(2).
const copyBuffer = 16 << 10

// turnBudget bounds the bytes one flow moves per turn of its loop, so a bulk transfer
// does not hold up the loop's other sessions; the flow goes on at the next turn.
const turnBudget = 2 * pipeSize

// splicesPerTurn bounds a bulk flow's splices from its source per turn, each of its
// spliceSize: once its splices have grown, a lone flow still moves turnBudget per
// turn, but a new one takes 128 KiB in its first turns, and one of many two shares.
// Why: taking up to turnBudget per turn in 64 KiB splices, the flows of a burst of new
// tunnels grew their sockets' receive buffers (sized by what a reader takes at once)
// to 8 MB median within 300 ms, in 15 of 42 rounds at 256 CONNECT tunnels: past the
// host's TCP memory, whose drops their senders then resent (0.5-1.1% of segments).
const splicesPerTurn = 2

// flow is one direction of a session: src's data to dst.
//
// Small messages are read and written through the loop's buffer: for the few bytes of
// a request, a greeting or a small reply, a splice through a pipe costs twice the
// kernel time of a read and a write (measured at thousands of new connections a
// second). Once a read fills the buffer the flow is bulk and splices through a pipe,
// which keeps the bytes out of user space; HAProxy's splice-auto makes the same bet.
// The pipe goes back to the loop once the flow has been quiet for a while (sweep), so
// a quiet connection holds no pipe, and no buffer: bytes are kept (held) only while
// dst cannot take them.
//
// Each read takes what src has queued, so a stream whose end is already queued behind
// its last bytes (a server that answers and closes) is seen to end before those bytes
// are written: they are then sent with MSG_MORE, and the FIN that follows at once
// (shutdown or close) leaves in the same segment: two packets fewer on the client's
// side of every such connection, the FIN on its own and the ACK of the data.
type flow struct {
	src, dst *end
	what     string // for errors: "client to upstream"
	held     []byte // read, not yet written: dst was full
	pipe     *pipe  // bulk: holds inPipe bytes spliced from src, not yet to dst
	inPipe   int
	bulk     bool
	eof      bool  // src ended; done once nothing is held either
	shut     bool  // dst's write side shut down after eof
	moved    int64 // bytes written to dst
	lastRead int64 // loop clock when src last gave data
	splice   int   // bulk: what a splice from src asks for (spliceSize); 0 before the first
	grown    int64 // loop clock when splice last doubled
	rcvbuf   int   // SO_RCVBUF set on src (loop.rcvbufFor); 0: the kernel's autotuning
	rebound  int64 // loop clock when rcvbuf last changed
}

// done reports that the flow has passed on everything up to src's end.
func (f *flow) done() bool { return f.eof && f.held == nil && f.inPipe == 0 }

// move moves what it can now: first what is held, then what src has, until src or dst
// would block, src ends or the turn's budget (turnBudget, splicesPerTurn) is spent. It
// reports whether the flow stopped for the budget only, with more to move at once; an
// error ends the session.
func (f *flow) move(l *loop) (more bool, err error) {
	for budget, splices := turnBudget, 0; ; {
		if f.held != nil || f.inPipe > 0 {
			if !f.dst.writable {
				return false, nil
			}
			if err := f.flush(); err != nil {
				return false, err
			}
			if f.held != nil || f.inPipe > 0 {
				return false, nil // dst is full: its EPOLLOUT brings the flow back
			}
		}
		if f.eof || !f.src.readable {
			return false, nil
		}
		if budget <= 0 || splices == splicesPerTurn {
			return true, nil
		}
		n, err := f.read(l)
		if err != nil {
			return false, err
		}
		budget -= n
		if f.pipe != nil { // read spliced
			splices++
		}
	}
}

// read takes what src has, spliced into the pipe once the flow is bulk (if a pipe can
// be had), read into the loop's buffer and written on at once otherwise. It clears
// src.readable when src has nothing more queued.
func (f *flow) read(l *loop) (int, error) {
	if f.bulk && f.pipe == nil {
		f.pipe = l.takePipe() // nil when none can be made: the buffer serves
	}
	if f.bulk && f.pipe != nil {
		if size := l.rcvbufFor(f); size != f.rcvbuf {
			setReceiveBuffer(f.src.fd, size, l.piped <= 1) // alone: a lift
			f.rcvbuf, f.rebound = size, l.now
		}
		n, err := sockio.Splice(f.src.fd, f.pipe.w, l.spliceSize(f))
		switch {
		case err == unix.EAGAIN:
			f.src.readable = false // the pipe is empty (flush ran first), so src is
			return 0, nil
		case err != nil:
			return 0, f.fail("splice", err)
		case n == 0:
			f.eof = true
			return 0, nil
		}
		f.inPipe = n
		f.lastRead = l.now
		return n, nil
	}
	n, eof, err := readQueued(f.src.fd, l.buf[:], f.src.peerEnded)
	if err != nil {
		return 0, f.fail("read", err)
	}
	if n < len(l.buf) {
		f.src.readable = false // drained: EAGAIN or the end
	} else {
		f.bulk = true
	}
	f.eof = eof
	if n == 0 {
		return 0, nil
	}
	f.lastRead = l.now
	w, err := send(f.dst.fd, l.buf[:n], eof)
	f.moved += int64(w)
	if err == unix.EAGAIN {
		f.held = append([]byte(nil), l.buf[w:n]...)
		f.dst.writable = false
		return n, nil
	}
	if err != nil {
		return n, f.fail("write", err)
	}
	return n, nil
}

// flush writes what is held or in the pipe to dst, until it is all written or dst is
// full (dst.writable cleared).
func (f *flow) flush() error {
	if f.held != nil {
		w, err := send(f.dst.fd, f.held, f.eof)
		f.moved += int64(w)
		f.held = f.held[w:]
		if len(f.held) == 0 {
			f.held = nil
		}
		switch {
		case err == unix.EAGAIN:
			f.dst.writable = false
		case err != nil:
			return f.fail("write", err)
		}
		return nil
	}
	for f.inPipe > 0 {
		n, err := sockio.Splice(f.pipe.r, f.dst.fd, f.inPipe)
		switch {
		case err == unix.EAGAIN:
			f.dst.writable = false
			return nil
		case err != nil:
			return f.fail("splice", err)
		}
		f.inPipe -= n
		f.moved += int64(n)
	}
	return nil
}

func (f *flow) fail(op string, errno error) error {
	return fmt.Errorf("relay %s: %w", f.what, os.NewSyscallError(op, errno))
}

// readQueued reads what the socket fd has queued into buf: until buf is full, nothing
// more is queued (n may then be 0), the stream ends (end) or a read fails.
//
// A read that returns less than it asked for has emptied the socket's queue, so
// unless the peer's end was reported (toEnd) it is the last: bytes that arrive after
// it raise a new edge-triggered event, and the read that would only say EAGAIN is
// saved, one system call per message. With the end reported the reads go on to it, so
// the last bytes leave with the FIN (send).
func readQueued(fd int, buf []byte, toEnd bool) (n int, end bool, err error) {
	for n < len(buf) {
		m, err := sockio.Read(fd, buf[n:])
		switch {
		case err == unix.EAGAIN:
			return n, false, nil
		case err != nil:
			return n, false, err
		case m == 0:
			return n, true, nil
		}
		short := m < len(buf)-n
		n += m
		if short && !toEnd {
			return n, false, nil
		}
	}
	return n, false, nil
}

// send writes p to the socket fd until it is all written or the socket is full
// (EAGAIN, with what was written). With last set, p is the stream's last data:
// MSG_MORE holds it for the FIN that the caller's shutdown or close adds at once
// (Session.pump), so both go in one segment.
func send(fd int, p []byte, last bool) (int, error) {
	sent := 0
	for sent < len(p) {
		var n int
		var err error
		if last {
			n, err = sockio.Send(fd, p[sent:], unix.MSG_MORE)
		} else {
			n, err = sockio.Write(fd, p[sent:])
		}
		if err != nil {
			return sent, err // EINTR is retried within sockio
		}
		sent += n
	}
	return sent, nil
}
