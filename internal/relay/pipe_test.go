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

// A loop shares spliceBudget among its bulk flows, or, where rmem_max lets it lift a
// bound again (bounding), boundedBudget, and then bounds the receive buffer of each of
// two or more bulk flows to what a turn takes, a power of two; a bounded flow that is
// its loop's only one is lifted to liftedRcvbuf, and a lone flow is left to autotuning.
func TestLoopWithBulkFlowsInTurnBoundsTheirReceiveBuffers(t *testing.T) {
	for _, c := range []struct {
		bounding          bool
		piped, rcvbuf     int
		share, wantRcvbuf int
	}{
		{false, 128, 0, spliceBudget / 128, 0},
		{false, 2, 0, pipeSize, 0},
		{true, 1, 0, pipeSize, 0},
		{true, 2, 0, pipeSize, 2 * pipeSize},
		{true, 128, 0, boundedBudget / 128, boundedBudget / 64},
		{true, 100, 0, boundedBudget / 100, 2 * pipeSize}, // 2×share, 1.3 MiB, rounded up
		{true, 4096, 0, minSplice, 2 * minSplice},
		{true, 1, 2 * pipeSize, pipeSize, liftedRcvbuf},
	} {
		l := &loop{bounding: c.bounding, piped: c.piped}
		f := &flow{rcvbuf: c.rcvbuf}
		if got := l.share(); got != c.share {
			t.Errorf("bounding %v, %d bulk flows: share %d, want %d", c.bounding, c.piped, got, c.share)
		}
		if got := l.rcvbufFor(f); got != c.wantRcvbuf {
			t.Errorf("bounding %v, %d bulk flows, SO_RCVBUF %d: want %d, got %d", c.bounding, c.piped, c.rcvbuf, c.wantRcvbuf, got)
		}
	}
}
