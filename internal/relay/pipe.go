package relay

import (
	"time"

	"golang.org/x/sys/unix"
)

// pipeSize is what one splice moves at most, and the capacity asked of each pipe (as
// Go's own splice does): a bulk flow moves a megabyte in two calls instead of sixteen
// pairs at the default 64 KiB. The kernel allocates the pages only as data fills them.
const pipeSize = 1 << 20

// A bulk flow's splices from its source start at minSplice and double at most once
// per spliceGrowth, up to its share of the loop's budget among the loop's bulk flows
// (loop.share: spliceBudget, or boundedBudget where receive buffers are bounded; at
// least minSplice, at most pipeSize).
//
// Why: the kernel grows a socket's receive buffer (autotuning) to a few times what its
// reader took within one round trip, and never shrinks it. A loop that serves many
// flows in turn finds each queue long; taking a megabyte at once, it grew each upstream
// socket's buffer to 10-16 MB at 256 CONNECT tunnels, 3-4 GB in all, past the host's
// tcp_mem: receive queues dropped about 1% of the segments, and the throughput fell to
// 0.5-0.8x Smokescreen's (its goroutines read each queue as it fills). Sharing the
// budget bounds what a busy loop's flows take; starting small keeps flows that begin
// together (before the loop counts them) from growing their buffers first. A lone flow
// reaches a megabyte in 0.4 s.
const (
	minSplice    = 64 << 10
	spliceGrowth = 100 * time.Millisecond
	spliceBudget = 8 << 20
)

// sparePipes bounds the empty pipes a loop keeps for the next bulk flow: enough for
// the bulk transfers a loop runs at once, few enough that a quiet proxy holds few fds.
const sparePipes = 16

// pipe is a kernel buffer for splice(2), which moves data between two descriptors
// only when one of them is a pipe.
type pipe struct{ r, w int }

// takePipe lends a pipe from the loop's spares or a new one; nil when none can be
// made (out of descriptors): the flow then copies through the loop's buffer.
func (l *loop) takePipe() *pipe {
	l.piped++
	l.sweepWithin(pipeIdle)
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		l.piped--
		return nil
	}
	// A smaller pipe (over fs.pipe-max-size or the user's pipe quota) works too, in
	// more calls.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	return &pipe{r: fds[0], w: fds[1]}
}

// givePipe takes back f's pipe: kept if empty and spares are wanted, closed otherwise
// (bytes left in it belong to a connection that ended).
func (l *loop) givePipe(f *flow) {
	if f.pipe == nil {
		return
	}
	l.piped--
	if f.inPipe == 0 && len(l.pipes) < sparePipes {
		l.pipes = append(l.pipes, f.pipe)
	} else {
		unix.Close(f.pipe.r)
		unix.Close(f.pipe.w)
	}
	f.pipe, f.inPipe, f.bulk, f.splice = nil, 0, false, 0
}

// spliceSize returns what f's next splice from its source may take, doubled first if
// it is due; a flow quiet long enough to give its pipe back starts small again.
func (l *loop) spliceSize(f *flow) int {
	share := l.share()
	switch {
	case f.splice == 0:
		f.splice, f.grown = minSplice, l.now
	case f.splice < share && l.now-f.grown >= int64(spliceGrowth):
		f.splice, f.grown = 2*f.splice, l.now
	}
	return min(f.splice, share)
}

// share is what one bulk flow may take per splice: its part of the loop's budget, at
// least minSplice, at most pipeSize.
func (l *loop) share() int {
	budget := spliceBudget
	if l.lift > 0 {
		budget = boundedBudget
	}
	return min(pipeSize, max(minSplice, budget/max(1, l.piped)))
}
