package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// errFenced refuses a renewal after the watchdog dropped the addresses: the elector
// then stops leading, and this pod competes again from a clean start.
var errFenced = errors.New("fenced: the reserved addresses were given up, this term is over")

// fencingLock is the Lease lock with two duties added for the fencing argument (see
// Timers): it remembers when the last successful write of this holder's record was
// sent, the instant every other replica's lease expiry is measured from at the
// earliest; and it runs fence before a write that gives the lease up (client-go's
// ReleaseOnCancel), so the lease is never released while this pod holds the address,
// and releases only a lease this pod still holds.
type fencingLock struct {
	resourcelock.Interface
	fence func()
	// renewEvery: a renewal sooner than this after the last one sent is not sent
	// (Timers.RenewInterval).
	renewEvery time.Duration

	mu         sync.Mutex
	lastRenew  time.Time // send time of the last successful acquire or renew; monotonic
	renewed    chan struct{}
	fencedTerm bool
}

func newFencingLock(inner resourcelock.Interface, fence func(), renewEvery time.Duration) *fencingLock {
	return &fencingLock{Interface: inner, fence: fence, renewEvery: renewEvery, renewed: make(chan struct{}, 1)}
}

// Get reads the record, and gives client-go a raw form of it that changes with every
// renewal. A standby counts the lease from when it sees the raw record change; client-go
// marshals the record's times to whole seconds, so a renewal in the same second as the
// one before looked like no renewal, and the standby counted the lease from the earlier
// one: up to a second too soon, past the fence (test/ha's partition test saw a 2 s
// lease taken 1.67 s after the last renewal). The renewal time at the microsecond the
// Lease stores is appended.
func (l *fencingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	if err != nil {
		return r, raw, err
	}
	return r, fmt.Appendf(raw, " renewed %s", r.RenewTime.UTC().Format(time.RFC3339Nano)), nil
}

func (l *fencingLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Create)
}

func (l *fencingLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Update)
}

func (l *fencingLock) write(ctx context.Context, r resourcelock.LeaderElectionRecord, do func(context.Context, resourcelock.LeaderElectionRecord) error) error {
	if r.HolderIdentity != l.Identity() {
		// A release (ReleaseOnCancel). The addresses go first. Then the record is read
		// again: client-go's tryRelease decides that this pod still leads from the last
		// record it observed, not from the one it has just read, so a leader that was
		// fenced (or frozen) while another took over would overwrite the new holder's
		// lease with an empty one and let a third candidate in beside it.
		l.fence()
		current, _, err := l.Interface.Get(ctx)
		if err != nil {
			return err
		}
		if current.HolderIdentity != l.Identity() {
			return nil // not ours to release
		}
		return do(ctx, r)
	}
	l.mu.Lock()
	fenced, last := l.fencedTerm, l.lastRenew
	l.mu.Unlock()
	if fenced {
		return errFenced
	}
	sent := time.Now()
	if !last.IsZero() && sent.Sub(last) < l.renewEvery {
		// Renewed recently enough: the elector's cadence is the standbys' poll, not
		// the writes' (Timers.RenewInterval). Only the last renewal sent counts for
		// the fence.
		return nil
	}
	if err := do(ctx, r); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fencedTerm {
		// The watchdog fired while this write was in flight: the term is over even
		// though the server took the write.
		return errFenced
	}
	l.lastRenew = sent
	select {
	case l.renewed <- struct{}{}:
	default:
	}
	return nil
}

// deadlinePassed marks the term fenced if no renewal was sent within after of the
// last one, and reports whether it did; renewed tells the watchdog when to look again.
func (l *fencingLock) deadlinePassed(after time.Duration) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline := l.lastRenew.Add(after)
	if time.Now().Before(deadline) {
		return deadline, false
	}
	l.fencedTerm = true
	return deadline, true
}
