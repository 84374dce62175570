package relay

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A bulk flow with plenty queued makes splicesPerTurn splices per turn, each of its
// spliceSize, and says it has more: a new flow takes 2×64 KiB, not turnBudget in
// 64 KiB splices, and twice as much once its splices have doubled. The source and
// the destination are pipes, which splice like sockets but hold exactly what the test
// puts in them, whatever the host's socket buffer limits.
func TestBulkFlowSplicesTwicePerTurn(t *testing.T) {
	src, dst := newPipe(t), newPipe(t)
	queued := make([]byte, pipeSize)
	if n, err := unix.Write(src.w, queued); err != nil || n != len(queued) {
		t.Fatalf("fill the source: wrote %d of %d bytes: %v", n, len(queued), err)
	}

	l := &loop{epoch: time.Now()}
	f := &flow{src: &end{fd: src.r, readable: true}, dst: &end{fd: dst.w, writable: true}, bulk: true}
	closePipeAtEnd(t, f)
	for _, want := range []int64{2 * minSplice, 4 * minSplice} {
		before := f.moved
		more, err := f.move(l)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.moved - before; got != want || !more {
			t.Fatalf("one turn moved %d bytes (more: %v), want %d and more", got, more, want)
		}
		l.now += int64(spliceGrowth)
	}
}

// closePipeAtEnd closes the pipe f holds, if any, when the test ends.
func closePipeAtEnd(t *testing.T, f *flow) {
	t.Cleanup(func() {
		if f.pipe != nil {
			unix.Close(f.pipe.r)
			unix.Close(f.pipe.w)
		}
	})
}

// newPipe is a non-blocking pipe of pipeSize bytes, closed when the test ends.
func newPipe(t *testing.T) pipe {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize); err != nil {
		t.Fatalf("a pipe of %d bytes: %v", pipeSize, err)
	}
	return pipe{r: fds[0], w: fds[1]}
}

// A bulk flow's source socket gets the receive buffer loop.rcvbufFor says before its
// splices: bounded while the loop serves other bulk flows, lifted once it is the only
// one (a rebound later) with its window clamp raised to match, which a bound leaves
// where autotuning put it (setReceiveBuffer). The kernel keeps twice what SO_RCVBUF
// asks, up to twice net.core.rmem_max. The source is a TCP connection on loopback.
func TestBulkFlowAmongOthersBoundsItsSourcesReceiveBuffer(t *testing.T) {
	src, peer := tcpPair(t)
	rmemMax, err := readSysctl("net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	dst := newPipe(t)

	l := &loop{epoch: time.Now(), lift: splicesPerTurn * pipeSize}
	f := &flow{src: &end{fd: src}, dst: &end{fd: dst.w, writable: true}, bulk: true}
	closePipeAtEnd(t, f)
	for _, c := range []struct {
		what         string
		others, want int // others: the loop's other bulk flows
	}{
		{"among 128", 127, splicesPerTurn * boundedBudget / 128},
		{"alone", 0, splicesPerTurn * pipeSize},
	} {
		if _, err := peer.Write(make([]byte, minSplice)); err != nil {
			t.Fatal(err)
		}
		f.src.readable = true
		l.piped = c.others
		if f.pipe != nil { // otherwise taking one counts it
			l.piped++
		}
		if _, err := f.move(l); err != nil {
			t.Fatal(err)
		}
		l.now += int64(rebound)
		got, err := unix.GetsockoptInt(src, unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 * min(c.want, rmemMax[0]); got != want {
			t.Errorf("%s: the source's receive buffer is %d bytes, want %d", c.what, got, want)
		}
		clamp, err := unix.GetsockoptInt(src, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP)
		if err != nil {
			t.Fatal(err)
		}
		if lifted := c.want == l.lift; lifted && clamp != 2*c.want {
			t.Errorf("%s: the source's window clamp is %d bytes, want %d", c.what, clamp, 2*c.want)
		} else if !lifted && clamp >= c.want {
			t.Errorf("%s: the source's window clamp is %d bytes, raised to its bound (%d)", c.what, clamp, c.want)
		}
	}
}

// tcpPair is a TCP connection on loopback: a non-blocking descriptor of the accepted
// end, and the dialling end, closed when the test ends.
func tcpPair(t *testing.T) (accepted int, dialled net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if dialled, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialled.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	file, err := c.(*net.TCPConn).File() // a descriptor of its own, blocking
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	accepted = int(file.Fd())
	if err := unix.SetNonblock(accepted, true); err != nil {
		t.Fatal(err)
	}
	return accepted, dialled
}
