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
