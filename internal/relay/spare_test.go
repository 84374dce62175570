package relay

import (
	"sync"
	"testing"
	"time"
)

// A finished function's goroutine waits for the next one, and Go hands it over: the
// next function runs with one waiting goroutine fewer, where a new goroutine would
// leave their number as it was.
func TestGoReusesAFinishedGoroutine(t *testing.T) {
	done := make(chan struct{})
	Go(func() { done <- struct{}{} })
	<-done
	deadline := time.Now().Add(2 * time.Second)
	for spare.idle.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the finished goroutine does not wait for more work")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the other goroutines settle
	before := spare.idle.Load()
	during := make(chan int32)
	Go(func() { during <- spare.idle.Load() })
	if got := <-during; got != before-1 {
		t.Fatalf("%d goroutines waited while the function ran, want %d (one taken from the %d)", got, before-1, before)
	}
}

func TestGoDoesNotWaitForABusyGoroutine(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 3 * maxSpare {
		started.Add(1)
		Go(func() { started.Done(); <-release })
	}
	started.Wait() // every function runs at once: none waited for another to end
	close(release)
	time.Sleep(50 * time.Millisecond)
	if idle := spare.idle.Load(); idle > maxSpare {
		t.Fatalf("%d goroutines wait for work, more than the %d kept", idle, maxSpare)
	}
}
