package relay

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
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

// Where it can (loop.lift > 0), a loop serving more than one bulk flow (either way of
// any session) bounds the receive buffer (SO_RCVBUF) of each one's source to what a
// turn takes from it, rounded up, and shares boundedBudget among them instead of
// spliceBudget; a bounded buffer is lifted to loop.lift once its flow is the loop's
// only one. A flow's buffer is raised no sooner than rebound after its last change
// (lowered at once, so that a burst of new flows does not fill the host's memory
// first): a client opening and closing a tunnel at a threshold then costs each flow on
// the loop at most two calls per rebound.
//
// Why: a loop serving flows in turn finds each queue full whatever it takes, and the
// kernel's autotuning, which assumes its reader keeps up, sizes each buffer by what
// was taken at once: with 128 KiB splices at 256 CONNECT tunnels the upstream buffers
// held 0.8-1.6 GB, up to the host's TCP memory pressure mark, and receive queues
// dropped segments; hence spliceBudget's small shares. Bounded, a queue holds about
// what the next turn takes (0.5 GB at 256 tunnels with 512 KiB splices), so the
// splices can be large, fewer calls per byte, and the bytes in flight few enough to
// stay warm in the caches of the reader's copy. Shrinking a buffer below the window
// already advertised costs the segments in flight beyond it (the kernel prunes the
// queue): the benchmark's resends rose from 0.03-0.05% to 0.10-0.15%.
//
// SO_RCVBUF locks autotuning out for the socket's life, so the lift is autotuning's own
// ceiling (net.ipv4.tcp_rmem's third field) where net.core.rmem_max allows it, and a
// loop bounds only where the lift reaches at least the largest bound: not under the
// kernel's old rmem_max of 208 KiB. The price: a flow that shares its loop has a window
// of at most 1-3 MB (20-60 MB/s on a 50 ms path), and one lifted what rmem_max allows
// (here 8 MiB against autotuning's 32).
const (
	boundedBudget = 64 << 20
	rebound       = time.Second
)

// receiveLift is what SO_RCVBUF asks to lift a bounded buffer on this host (liftFor);
// 0 where a loop should not bound.
var receiveLift = sync.OnceValue(func() int {
	rmemMax, err := readSysctl("net/core/rmem_max")
	if err != nil {
		return 0
	}
	tcpRmem, err := readSysctl("net/ipv4/tcp_rmem")
	if err != nil || len(tcpRmem) != 3 {
		return 0
	}
	return liftFor(rmemMax[0], tcpRmem[2])
})

// liftFor is what SO_RCVBUF asks to lift a bounded buffer given net.core.rmem_max and
// autotuning's ceiling (tcp_rmem's third field; SO_RCVBUF asks half of what the kernel
// keeps): as far as both allow, or 0 (no bounds) when that is below the largest bound.
func liftFor(rmemMax, autotuneMax int) int {
	lift := min(rmemMax, autotuneMax/2)
	if lift < splicesPerTurn*pipeSize {
		return 0
	}
	return lift
}

// readSysctl reads the integers of a sysctl (a path under /proc/sys), as the process's
// network namespace sees them.
func readSysctl(name string) ([]int, error) {
	data, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return nil, err
	}
	var values []int
	for _, field := range strings.Fields(string(data)) {
		v, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		values = append(values, v)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	return values, nil
}

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

// rcvbufFor is the receive buffer f's source should have (SO_RCVBUF) before its next
// splice: what a turn takes from it, rounded up to a power of two, while the loop serves
// other bulk flows too; l.lift once a bounded flow is the loop's only one; f.rcvbuf (no
// change) otherwise, and for a raise within rebound of its last change.
func (l *loop) rcvbufFor(f *flow) int {
	want := f.rcvbuf
	switch {
	case l.lift > 0 && l.piped > 1:
		want = 1 << bits.Len(uint(splicesPerTurn*l.share()-1))
	case f.rcvbuf != 0:
		want = l.lift
	}
	if f.rcvbuf != 0 && want > f.rcvbuf && l.now-f.rebound < int64(rebound) {
		return f.rcvbuf
	}
	return want
}

// setReceiveBuffer sets fd's receive buffer to size (the kernel keeps twice that). A
// lift also raises the window clamp to match: SO_RCVBUF alone leaves it where
// autotuning last put it, which for a flow bounded early is a fraction of a megabyte. A
// bound leaves the clamp be: raising it there too (to twice size) let the windows of
// 16 tunnels grow to their bounds, and against the unbounded loop they moved 1.03-1.04x
// for 1.11-1.14x the CPU per GB, where with the clamp left they moved 1.17-1.18x for
// 0.88-0.92x (bench-http, BENCH_BASELINE; two and three runs). Failures (none is
// expected of a TCP socket; a Unix one has no clamp) are not tried again: a call per
// splice would cost more than the bound saves.
func setReceiveBuffer(fd, size int, lift bool) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	if lift {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, 2*size)
	}
}
