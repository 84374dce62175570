// Package drain is how both proxies stop: count the connections being handled, admit
// no new one once stopping, wait for the count to reach zero until the grace period
// ends, then cut those left and wait for them to unwind.
package drain

import (
	"context"
	"sync"
)

// Group counts the connections a proxy is handling. The zero value is ready to use.
type Group struct {
	mu       sync.Mutex
	stopped  bool
	handling sync.WaitGroup
}

// Start counts one more connection, or reports false once the group is stopped: the
// caller then closes the connection instead of handling it. Counting under the same
// lock as Stop keeps an Add from racing the Wait (sync.WaitGroup forbids it).
func (g *Group) Start() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.handling.Add(1)
	return true
}

// Done ends a connection Start counted.
func (g *Group) Done() { g.handling.Done() }

// Stop admits no more connections. Wait stops the group too; a caller that must do
// something between the last admission and the wait (closing idle connections) calls
// Stop first.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// Wait stops the group and waits for its connections to end. If ctx ends first (the
// grace period is over) it calls cut, which ends those left and says how many, and
// waits for them to unwind; it returns cut's count, 0 when none was needed.
func (g *Group) Wait(ctx context.Context, cut func() int) int {
	g.Stop()
	done := make(chan struct{})
	go func() { g.handling.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
		n := cut()
		<-done
		return n
	}
}
