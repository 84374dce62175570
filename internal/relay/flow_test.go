package relay

import (
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
