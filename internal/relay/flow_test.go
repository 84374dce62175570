package relay

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A bulk flow with plenty queued makes splicesPerTurn splices per turn, each of its
// spliceSize, and says it has more: a new flow takes 2×64 KiB, not turnBudget in
// 64 KiB splices, and twice as much once its splices have doubled.
func TestBulkFlowSplicesTwicePerTurn(t *testing.T) {
	senderSide, src := pair(t)
	dst, reader := pair(t)
	const queued = 1 << 20
	// Room for every splice at once: the test counts turns, not a full socket.
	if err := src.SetReadBuffer(2 * queued); err != nil {
		t.Fatal(err)
	}
	if err := dst.SetWriteBuffer(2 * queued); err != nil {
		t.Fatal(err)
	}
	go senderSide.Write(make([]byte, 4*queued)) // until the test closes it
	go io.Copy(io.Discard, reader)
	srcFD, dstFD := fd(t, src), fd(t, dst)
	waitFor(t, "a megabyte queued", func() bool {
		n, err := unix.IoctlGetInt(srcFD, unix.SIOCINQ)
		return err == nil && n >= queued
	})

	l := &loop{epoch: time.Now()}
	f := &flow{src: &end{fd: srcFD, readable: true}, dst: &end{fd: dstFD, writable: true}, bulk: true}
	t.Cleanup(func() {
		if f.pipe != nil {
			unix.Close(f.pipe.r)
			unix.Close(f.pipe.w)
		}
	})
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

// fd is c's descriptor, for system calls the relay makes itself (c stays open).
func fd(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.Control(func(d uintptr) { n = int(d) }); err != nil {
		t.Fatal(err)
	}
	return n
}
