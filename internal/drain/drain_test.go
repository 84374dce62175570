package drain

import (
	"context"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheLastConnectionEnds(t *testing.T) {
	var g Group
	if !g.Start() {
		t.Fatal("a new group refused a connection")
	}
	go func() { time.Sleep(10 * time.Millisecond); g.Done() }()
	if cut := g.Wait(context.Background(), func() int { t.Error("cut called without a grace period"); return 0 }); cut != 0 {
		t.Errorf("cut = %d, want 0", cut)
	}
	if g.Start() {
		t.Error("a stopped group admitted a connection")
	}
}

func TestWaitCutsWhatIsLeftWhenTheGracePeriodEnds(t *testing.T) {
	var g Group
	g.Start()
	g.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	cut := g.Wait(ctx, func() int {
		go func() { g.Done(); g.Done() }()
		return 2
	})
	if cut != 2 {
		t.Errorf("cut = %d, want 2", cut)
	}
}
