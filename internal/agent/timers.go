package agent

import (
	"fmt"
	"time"

	"k8s.io/client-go/tools/leaderelection"
)

// Timers are the election's three durations (client-go's meaning).
//
// The fencing argument, which is why the watchdog exists. Let S be the instant this
// leader sent its last renewal the API server accepted (fencingLock.lastRenew). The
// server wrote it at some C >= S; a standby notices that record at some O >= C and
// may take the Lease only once LeaseDuration has passed on its own clock since O (O is
// when it saw the record change: fencingLock.Get makes every renewal a change). So
// no one else can hold the Lease before S + LeaseDuration, less what the standby's
// clock gains on ours in that time (only rates matter: each side measures an interval
// on its own monotonic clock, never a timestamp from the other).
//
// The leader's watchdog removes the addresses at S + RenewDeadline on its clock, and
// a release is never written before they are gone (fencingLock). client-go's elector
// alone would not do: it gives up only when a renewal round started RetryPeriod after
// the last success has failed for RenewDeadline (S + request time + RetryPeriod +
// RenewDeadline), and with ReleaseOnCancel it then tries to write the release, for up
// to RenewDeadline more, before OnStoppedLeading runs, on a goroutine. So the
// addresses are gone strictly before anyone else can take the Lease when
//
//	RenewDeadline + removal + scheduling delay + clock rate drift < LeaseDuration
//
// The defaults leave 500 ms for the last three: removing an address is one netlink
// request (well under a millisecond), a timer on a loaded node fires within tens of
// milliseconds, and 0.1 % drift (an undisciplined quartz clock) is 2 ms over 2 s.
// Validate insists on fencingMargin at least.
//
// A leader that is not running at all cannot remove anything (SIGSTOP, a hung node
// whose kernel still answers ARP): the address stays on its link. The new leader
// therefore probes (link.InUse) and adds the addresses only once no one answers for
// them; the frozen leader drops them the instant it runs again, as its deadline has
// passed (timers run on the monotonic clock, which keeps counting while a process is
// stopped).
//
// Failover and API load. client-go uses one RetryPeriod for a standby's polls (reads)
// and the leader's renewals (writes); the agent separates them: the elector runs at
// RetryPeriod, and fencingLock lets a renewal reach the API server only once
// RenewInterval has passed since the last one it sent (a skipped renewal changes
// nothing the argument above relies on: S is the last renewal actually sent). The
// elector takes a skipped renewal for a success, so its own give-up comes later
// still: with a renew interval, the watchdog is what fences (test/ha shows the leader
// keeping the address past its deadline without it).
//
// A crashed leader's addresses move after LeaseDuration less the time since its last
// renewal, plus two poll lags (a standby notices the last renewal, then the expiry,
// each at a poll; client-go jitters a poll period between 1 and 2.2 RetryPeriods,
// so each lag averages about 0.85 RetryPeriod), plus the probe; a released Lease is
// taken at the next poll. The leader writes once per RenewInterval rounded up to its
// next poll; standbys only read, one GET per poll. So: LeaseDuration is what a crash
// costs at most, and must stay a whole number of seconds (the Lease stores whole
// seconds) and above RenewDeadline by the margin; a shorter RetryPeriod buys faster
// takeovers (crash and graceful) with reads; a longer RenewInterval costs fewer writes
// and even shortens the average crash (a crash comes on average half a renewal
// period after the last renewal, which the standby's count starts from), but leaves
// the leader less time, RenewDeadline - RenewInterval, to get a renewal through a
// slow API server before it fences itself.
//
// The defaults: crash failover LeaseDuration - about 0.3 s (half the 0.6 s renewal
// period) + 2 × 85 ms + the 100 ms probe, about 2 s (2.5 s after a crash just past a
// renewal); graceful about 0.2 s; 1000/600 ≈ 1.7 writes a second; about 6 reads a
// second per standby; 0.9 s (nine polls) for a renewal to get through before the
// leader fences.
type Timers struct {
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// RenewInterval is the least time between two renewals sent (see above).
	RenewInterval time.Duration
}

// DefaultTimers: crash failover about 2 s, graceful about 0.2 s, under 2 Lease writes a
// second (see above; measured: README, "High availability").
var DefaultTimers = Timers{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond,
	RetryPeriod: 100 * time.Millisecond, RenewInterval: 600 * time.Millisecond}

// fencingMargin is the least LeaseDuration - RenewDeadline accepted (see Timers).
const fencingMargin = 250 * time.Millisecond

// Validate checks the fencing inequality and client-go's own rules.
func (t Timers) Validate() error {
	switch {
	case t.LeaseDuration < time.Second || t.LeaseDuration%time.Second != 0:
		return fmt.Errorf("lease duration %s: want a whole number of seconds, at least 1s (a Lease stores whole seconds)", t.LeaseDuration)
	case t.RetryPeriod <= 0:
		return fmt.Errorf("retry period %s: want more than 0", t.RetryPeriod)
	case t.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(t.RetryPeriod)):
		return fmt.Errorf("renew deadline %s: want more than %.1f × the retry period %s", t.RenewDeadline, leaderelection.JitterFactor, t.RetryPeriod)
	case t.RenewInterval < 0 || t.RenewInterval+t.RetryPeriod >= t.RenewDeadline:
		return fmt.Errorf("renew interval %s: want at least 0 and, with the retry period %s, less than the renew deadline %s (a renewal must be sent before the deadline)",
			t.RenewInterval, t.RetryPeriod, t.RenewDeadline)
	case t.LeaseDuration-t.RenewDeadline < fencingMargin:
		return fmt.Errorf("renew deadline %s: want at least %s less than the lease duration %s, or a leader that cannot renew may still hold the address when another takes over",
			t.RenewDeadline, fencingMargin, t.LeaseDuration)
	}
	return nil
}
