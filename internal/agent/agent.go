// Package agent is egress-router-agent's work: in a router pod of an HA router it
// competes for the router's Lease and, while it holds it, holds the reserved
// addresses on net1 (plan.Activation, applied with link.Hold) and says ready; on
// losing it, it gives them up first and then says not ready.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/egress-router/egress-router/internal/link"
)

// Options configure an Agent.
type Options struct {
	Client    kubernetes.Interface
	LeaseName string // one Lease per router
	Namespace string // the Lease's and the pod's
	Identity  string // the pod's name
	// Reservation is what the active pod holds: plan.Activation of the router's
	// configuration.
	Reservation link.Reservation
	Timers      Timers
	Log         *slog.Logger
	// Registry receives the agent's metrics.
	Registry prometheus.Registerer
}

// Announcements: how many times a new holder announces the addresses, and how far
// apart. One gratuitous ARP can be lost; three spread over half a second reach a
// gateway that was busy, at no cost worth counting.
const (
	announcements    = 3
	announceInterval = 250 * time.Millisecond
	// probeWait is how long a new leader listens for the old holder's answer to its
	// ARP probe. A Linux holder answers from the kernel within a millisecond; the
	// rest is for a loaded node.
	probeWait = 100 * time.Millisecond
)

// Agent is one pod's participant in its router's election.
type Agent struct {
	o        Options
	metrics  metrics
	recorder record.EventRecorder
	events   record.EventBroadcaster
	pod      *corev1.ObjectReference

	mu    sync.Mutex // serialises holding and releasing the addresses
	held  bool       // the addresses may be on the link (set before Hold starts)
	ready atomic.Bool
}

// New checks o and returns an Agent.
func New(o Options) (*Agent, error) {
	if err := o.Timers.Validate(); err != nil {
		return nil, err
	}
	if o.LeaseName == "" || o.Namespace == "" || o.Identity == "" {
		return nil, fmt.Errorf("lease name %q, namespace %q and identity %q must all be set", o.LeaseName, o.Namespace, o.Identity)
	}
	events := record.NewBroadcaster()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: o.Client.CoreV1().Events(o.Namespace)})
	return &Agent{
		o:        o,
		metrics:  newMetrics(o.Registry),
		events:   events,
		recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "egress-router-agent"}),
		pod:      &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: o.Namespace, Name: o.Identity},
	}, nil
}

// Ready is nil while this pod holds the reserved addresses: only the active pod is
// ready, so the router's Service sends clients to it alone.
func (a *Agent) Ready() error {
	if !a.ready.Load() {
		return errors.New("standby: another pod holds the reserved addresses")
	}
	return nil
}

// Run competes for the Lease until ctx ends, then gives the addresses up and the
// Lease back. A term that ends (lease lost, renewal failed, fenced) is followed by a
// new candidacy.
func (a *Agent) Run(ctx context.Context) error {
	defer a.events.Shutdown()
	// A restarted agent finds the addresses as its previous run left them; without
	// the Lease they are not this pod's.
	a.mu.Lock()
	a.held = true
	a.mu.Unlock()
	a.stepDown("starting")
	for ctx.Err() == nil {
		if err := a.term(ctx); err != nil {
			return err
		}
	}
	return nil
}

// term is one candidacy, and the leadership that may follow it.
func (a *Agent) term(ctx context.Context) error {
	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	lease := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: a.o.Namespace, Name: a.o.LeaseName},
		Client:     a.o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.o.Identity},
	}
	lock := newFencingLock(lease, func() { a.stepDown("releasing the lease") }, a.o.Timers.RenewInterval)
	t := a.o.Timers
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            a.o.LeaseName,
		LeaseDuration:   t.LeaseDuration,
		RenewDeadline:   t.RenewDeadline,
		RetryPeriod:     t.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) { a.takeOver(leadCtx, lock, endTerm) },
			OnStoppedLeading: func() { a.stepDown("stopped leading") },
			OnNewLeader: func(id string) {
				if id != a.o.Identity {
					a.o.Log.Info("leader observed", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(termCtx)
	return nil
}

// takeOver runs when the Lease is won: it starts the watchdog, waits until no other
// host answers for the addresses, holds and announces them, then says ready.
func (a *Agent) takeOver(leadCtx context.Context, lock *fencingLock, endTerm func()) {
	won := time.Now()
	go a.watchdog(leadCtx, lock, endTerm)
	for waited := false; ; waited = true {
		inUse, err := link.InUse(a.o.Reservation, probeWait)
		if err != nil {
			a.o.Log.Error("cannot probe for the reserved addresses; not taking them", "error", err)
		} else if !inUse {
			break
		} else if !waited {
			a.o.Log.Warn("another host still answers for the reserved addresses; waiting for it to let go")
		}
		select {
		case <-leadCtx.Done():
			return
		case <-time.After(a.o.Timers.RetryPeriod):
		}
	}
	a.mu.Lock()
	if leadCtx.Err() != nil { // the term ended while probing: stepDown has run or will
		a.mu.Unlock()
		return
	}
	a.held = true
	err := link.Hold(a.o.Reservation)
	if err == nil {
		err = link.AnnounceHeld(a.o.Reservation)
	}
	if err != nil {
		a.mu.Unlock()
		a.o.Log.Error("cannot hold the reserved addresses; ending the term", "error", err)
		endTerm()
		return
	}
	a.ready.Store(true)
	a.mu.Unlock()
	took := time.Since(won)
	a.metrics.active.Set(1)
	a.metrics.transitions.WithLabelValues("active").Inc()
	a.metrics.takeover.Set(took.Seconds())
	a.o.Log.Info("active: holding the reserved addresses", "addresses", fmt.Sprint(a.o.Reservation.Addresses), "seconds", took.Seconds())
	a.recorder.Eventf(a.pod, corev1.EventTypeNormal, "BecameActive", "holds %v for %s/%s", a.o.Reservation.Addresses, a.o.Namespace, a.o.LeaseName)
	for range announcements - 1 {
		select {
		case <-leadCtx.Done():
			return
		case <-time.After(announceInterval):
		}
		a.mu.Lock()
		if a.held {
			if err := link.AnnounceHeld(a.o.Reservation); err != nil {
				a.o.Log.Warn("announcement failed", "error", err)
			}
		}
		a.mu.Unlock()
	}
}

// watchdog gives the addresses up at the fencing deadline (see Timers), whatever the
// elector is doing, and ends the term.
func (a *Agent) watchdog(leadCtx context.Context, lock *fencingLock, endTerm func()) {
	for {
		deadline, passed := lock.deadlinePassed(a.o.Timers.RenewDeadline)
		if passed {
			a.stepDown("no renewal within the renew deadline: fenced")
			endTerm()
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-leadCtx.Done():
			t.Stop()
			return
		case <-lock.renewed:
			t.Stop()
		case <-t.C:
		}
	}
}

// stepDown removes the addresses (first), then says not ready. Idempotent.
func (a *Agent) stepDown(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.held {
		return
	}
	err := link.Release(a.o.Reservation)
	a.held = false
	wasReady := a.ready.Swap(false)
	a.metrics.active.Set(0)
	if err != nil {
		a.o.Log.Error("releasing the reserved addresses", "reason", reason, "error", err)
	}
	if !wasReady {
		return
	}
	a.metrics.transitions.WithLabelValues("standby").Inc()
	a.o.Log.Info("standby: gave the reserved addresses up", "reason", reason)
	a.recorder.Eventf(a.pod, corev1.EventTypeNormal, "SteppedDown", "gave %v up: %s", a.o.Reservation.Addresses, reason)
}
