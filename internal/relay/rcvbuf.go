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
