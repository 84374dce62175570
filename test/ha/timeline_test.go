package ha_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/egress-router/egress-router/internal/agent"
)

// leaseWatch records when the API server's copy of the router's Lease changed and who
// held it then, through a watch from the test (events arrive within milliseconds of
// the write): where a failover's time goes.
type leaseWatch struct {
	mu      sync.Mutex
	changes []leaseChange
}

type leaseChange struct {
	at     time.Time
	holder string
}

// watchLease watches the Lease until the test ends, watching again whenever the watch
// ends (the API server restarted).
func watchLease(t testing.TB, client kubernetes.Interface, namespace, name string) *leaseWatch {
	w := &leaseWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lastVersion := ""
		for ctx.Err() == nil {
			events, err := client.CoordinationV1().Leases(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for e := range events.ResultChan() {
				l, ok := e.Object.(*coordinationv1.Lease)
				if !ok || l.ResourceVersion == lastVersion {
					continue
				}
				lastVersion = l.ResourceVersion
				holder := ""
				if l.Spec.HolderIdentity != nil {
					holder = *l.Spec.HolderIdentity
				}
				w.mu.Lock()
				w.changes = append(w.changes, leaseChange{time.Now(), holder})
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// lastChange is when the Lease last changed.
func (w *leaseWatch) lastChange() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.changes) == 0 {
		return time.Time{}
	}
	return w.changes[len(w.changes)-1].at
}

// timeline is one failover, from the fault on.
type timeline struct {
	// sinceRenewal: how long before the fault the old leader last wrote the Lease.
	sinceRenewal time.Duration
	// acquired: fault → the new holder's write (a crash waits for the lease to expire).
	acquired time.Duration
	// takeover: Lease won → addresses held and announced (the new leader's
	// egress_router_agent_last_takeover_seconds: its probe, Hold, the announcements).
	takeover time.Duration
	// served: fault → the client's first connection through the new leader.
	served time.Duration
}

// client is what remains of served: addresses announced → the client's first
// connection (its retry interval, readiness, the connection itself).
func (tl timeline) client() time.Duration { return tl.served - tl.acquired - tl.takeover }

func (tl timeline) String() string {
	return fmt.Sprintf("last renewal %v before the fault; fault → Lease taken %v; → addresses held and announced +%v; → first connection +%v; total %v",
		tl.sinceRenewal.Round(time.Millisecond), tl.acquired.Round(time.Millisecond), tl.takeover.Round(time.Millisecond),
		tl.client().Round(time.Millisecond), tl.served.Round(time.Millisecond))
}

// handover is, around fault, when the old holder last renewed the Lease and when a
// new holder took it (zero if not yet).
func (w *leaseWatch) handover(fault time.Time, old string) (renewed, taken time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		switch {
		case c.at.Before(fault):
			renewed = c.at
		case taken.IsZero() && c.holder != "" && c.holder != old:
			taken = c.at
		}
	}
	return renewed, taken
}

// assertLeaseRanOut fails the test if the Lease old held at fault was taken before a
// lease duration had passed since its last renewal: the fence assumes no one can
// take it sooner. (Both instants are when the test's watch saw the writes, within
// milliseconds of them; 50 ms is left for that.)
func (r *router) assertLeaseRanOut(fault time.Time, old string) {
	r.t.Helper()
	renewed, taken := r.leases.handover(fault, old)
	if held := taken.Sub(renewed); !taken.IsZero() && held < agent.DefaultTimers.LeaseDuration-50*time.Millisecond {
		r.t.Errorf("the Lease was taken %v after %s's last renewal, before its %v ran out", held, old, agent.DefaultTimers.LeaseDuration)
	}
}

// timeline puts a failover's times together: the Lease's changes around fault (old
// was the holder), the new leader's takeover metric, and when the client got through.
func (r *router) timeline(fault, served time.Time, old string, next int) timeline {
	renewed, taken := r.leases.handover(fault, old)
	tl := timeline{served: served.Sub(fault), sinceRenewal: fault.Sub(renewed), acquired: taken.Sub(fault)}
	_, metrics, err := r.get(next, "/metrics")
	if err != nil {
		r.t.Fatalf("%s's /metrics: %v", r.pods[next].name, err)
	}
	const takeover = "egress_router_agent_last_takeover_seconds "
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), takeover); ok {
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("%s's %s: %v", r.pods[next].name, takeover, err)
			}
			tl.takeover = time.Duration(s * float64(time.Second))
		}
	}
	return tl
}
