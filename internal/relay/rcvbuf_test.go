package relay

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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

// A loop shares spliceBudget among its bulk flows, or, where it can lift a bound again
// (lift > 0), boundedBudget, and then bounds the receive buffer of each of two or more
// bulk flows to what a turn takes, rounded up to a power of two; a bounded flow that is
// its loop's only one is lifted, a lone flow is left to autotuning, and a buffer is
// raised no sooner than rebound after its last change, lowered at once.
func TestLoopWithBulkFlowsInTurnBoundsTheirReceiveBuffers(t *testing.T) {
	const lift = 3 << 20
	for _, c := range []struct {
		lift, piped, rcvbuf int
		since               time.Duration // since the flow's buffer last changed
		share, want         int
	}{
		{0, 128, 0, 0, spliceBudget / 128, 0},
		{0, 2, 0, 0, pipeSize, 0},
		{lift, 1, 0, 0, pipeSize, 0},
		{lift, 2, 0, 0, pipeSize, 2 * pipeSize},
		{lift, 128, 0, 0, boundedBudget / 128, boundedBudget / 64},
		{lift, 100, 0, 0, boundedBudget / 100, 2 * pipeSize}, // 2×share, 1.3 MiB, rounded up
		{lift, 4096, 0, 0, minSplice, 2 * minSplice},
		{lift, 4096, 2 * pipeSize, 0, minSplice, 2 * minSplice}, // lowered at once
		{lift, 2, 2 * minSplice, rebound - time.Millisecond, pipeSize, 2 * minSplice},
		{lift, 2, 2 * minSplice, rebound, pipeSize, 2 * pipeSize},
		{lift, 1, 2 * pipeSize, rebound - time.Millisecond, pipeSize, 2 * pipeSize},
		{lift, 1, 2 * pipeSize, rebound, pipeSize, lift},
	} {
		l := &loop{lift: c.lift, piped: c.piped, now: int64(time.Hour)}
		f := &flow{rcvbuf: c.rcvbuf, rebound: l.now - int64(c.since)}
		if got := l.share(); got != c.share {
			t.Errorf("lift %d, %d bulk flows: share %d, want %d", c.lift, c.piped, got, c.share)
		}
		if got := l.rcvbufFor(f); got != c.want {
			t.Errorf("lift %d, %d bulk flows, SO_RCVBUF %d set %v ago: want %d, got %d", c.lift, c.piped, c.rcvbuf, c.since, c.want, got)
		}
	}
}

// A bounded buffer is lifted as far as rmem_max and autotuning's ceiling both allow,
// and a host where that is below the largest bound (the old rmem_max default of
// 208 KiB) gets no bounds.
func TestLiftReachesAutotuningsCeilingAsFarAsRmemMaxAllows(t *testing.T) {
	for _, c := range []struct{ rmemMax, autotuneMax, want int }{
		{212992, 6 << 20, 0},
		{1 << 20, 32 << 20, 0},
		{4 << 20, 2 << 20, 0},
		{2 << 20, 4 << 20, 2 << 20},
		{4 << 20, 6 << 20, 3 << 20},
		{4 << 20, 32 << 20, 4 << 20},
		{64 << 20, 32 << 20, 16 << 20},
	} {
		if got := liftFor(c.rmemMax, c.autotuneMax); got != c.want {
			t.Errorf("rmem_max %d, tcp_rmem ceiling %d: lift %d, want %d", c.rmemMax, c.autotuneMax, got, c.want)
		}
	}
}
