package relay

import (
	"testing"
	"time"
)

// A bulk flow's splices start at minSplice, double at most once per spliceGrowth up
// to pipeSize, fall to the flow's share when the loop's bulk flows multiply, and start
// small again once the flow has given its pipe back.
func TestSpliceSizeStartsSmallGrowsAndShares(t *testing.T) {
	l := &loop{piped: 1}
	f := &flow{}
	next := func(after time.Duration) int {
		l.now += int64(after)
		return l.spliceSize(f)
	}
	if got := next(0); got != minSplice {
		t.Fatalf("first splice asks for %d, want %d", got, minSplice)
	}
	if got := next(spliceGrowth - time.Millisecond); got != minSplice {
		t.Fatalf("before spliceGrowth: %d, want %d", got, minSplice)
	}
	want := minSplice
	for want < pipeSize {
		want *= 2
		if got := next(time.Millisecond); got != want {
			t.Fatalf("at spliceGrowth: %d, want %d", got, want)
		}
		if got := next(0); got != want {
			t.Fatalf("doubled twice within spliceGrowth: %d, want %d", got, want)
		}
		l.now += int64(spliceGrowth - time.Millisecond)
	}
	if got := next(time.Hour); got != pipeSize {
		t.Fatalf("past pipeSize: %d", got)
	}

	for _, c := range []struct{ piped, want int }{
		{spliceBudget / pipeSize, pipeSize},
		{2 * spliceBudget / pipeSize, pipeSize / 2},
		{spliceBudget / minSplice, minSplice},
		{10 * spliceBudget / minSplice, minSplice},
	} {
		l.piped = c.piped
		if got := next(time.Millisecond); got != c.want {
			t.Errorf("with %d bulk flows on the loop: %d, want %d", c.piped, got, c.want)
		}
	}

	l.piped = 1
	f.pipe = &pipe{r: -1, w: -1}
	l.pipes = make([]*pipe, 0, sparePipes)
	l.givePipe(f)
	if got := next(time.Millisecond); got != minSplice {
		t.Errorf("after giving its pipe back: %d, want %d", got, minSplice)
	}
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
