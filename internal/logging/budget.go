package logging

import (
	"sync"
	"time"
)

// Budget lets at most PerSecond lines of one kind through each second: a client
// hammering a denied host or a dead destination must not turn the log into the
// bottleneck or fill the disk. What it drops it counts, so the next admitted line can
// say how many went missing.
type Budget struct {
	PerSecond int

	mu         sync.Mutex
	second     int64
	written    int
	suppressed int
}

// Admit reports whether a line may be written now. At the first line of a new second
// it also returns how many lines the previous seconds dropped, for the caller to log.
func (b *Budget) Admit() (ok bool, dropped int) {
	now := time.Now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	if now != b.second {
		dropped = b.suppressed
		b.second, b.written, b.suppressed = now, 0, 0
	}
	if b.written < b.PerSecond {
		b.written++
		return true, dropped
	}
	b.suppressed++
	return false, dropped
}
