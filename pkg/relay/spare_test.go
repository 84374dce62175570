package relay

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGoReusesAFinishedGoroutine(t *testing.T) {
	done := make(chan struct{})
	Go(func() { done <- struct{}{} })
	<-done
	time.Sleep(10 * time.Millisecond) // let it reach the wait
	before := runtime.NumGoroutine()
	for range 100 {
		Go(func() { done <- struct{}{} })
		<-done
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+1 {
		t.Fatalf("100 functions run one after another left %d goroutines, had %d", after, before)
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
