package ha_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fault is one way to take the active pod away; restore puts that replica back as a
// standby.
type fault struct {
	name    string
	inflict func(r *router, active int)
	restore func(r *router, old int)
	// within: how long the other pod may take, from the fault, to serve.
	within time.Duration
}

var (
	// The pod is deleted gracefully: its agent gets SIGTERM, gives the address up and
	// releases the Lease.
	graceful = fault{"graceful",
		func(r *router, active int) {
			a := r.pods[active].agent
			a.signal(r.t, syscall.SIGTERM)
			a.waitExit(r.t, 5*time.Second)
		},
		func(r *router, old int) { r.start(old) },
		3 * time.Second,
	}
	// The pod vanishes: its agent is SIGKILLed and its network goes (the node's
	// runtime deletes the namespace; here net1 is deleted, which takes the address
	// with it, and the runtime's DEL and a new pod's ADD bring the replica back).
	crash = fault{"crash",
		func(r *router, active int) {
			a := r.pods[active].agent
			a.signal(r.t, syscall.SIGKILL)
			a.waitExit(r.t, 5*time.Second)
			r.tp.Exec(r.t, r.pods[active].pod.NS, "ip", "link", "del", "net1").Run(r.t)
		},
		func(r *router, old int) {
			r.attach(r.pods[old])
			r.start(old)
		},
		6 * time.Second,
	}
)

// failover inflicts f on the active pod and checks the takeover: the other pod is
// ready and holds the address, the gateway learnt its MAC before any traffic, the
// destination sees the reserved address through it. It returns the time from the
// fault to the first successful connection.
func (r *router) failover(f fault) time.Duration {
	r.t.Helper()
	active, _ := r.waitActive(10*time.Second, -1)
	if _, err := r.connectThrough(active); err != nil {
		r.t.Fatalf("before the fault, through %s: %v", r.pods[active].name, err)
	}
	start := time.Now()
	f.inflict(r, active)
	next, _ := r.waitActive(f.within, active)
	if err := r.gatewayKnows(next); err != nil {
		r.t.Error(err)
	}
	via, served := r.firstConnection(f.within)
	if via != next {
		r.t.Errorf("served through %s, want the new leader %s", r.pods[via].name, r.pods[next].name)
	}
	f.restore(r, active)
	return served.Sub(start)
}

func TestFailover(t *testing.T) {
	for _, f := range []fault{graceful, crash} {
		t.Run(f.name, func(t *testing.T) {
			r := newRouter(t)
			r.start(0)
			first, _ := r.waitActive(10*time.Second, -1)
			r.start(1)
			took := r.failover(f)
			t.Logf("%s: fault → first connection through the new leader: %v", f.name, took)
			if err := r.eventFor(first, "BecameActive"); err != nil {
				t.Error(err)
			}
			next, _ := r.waitActive(10*time.Second, first)
			_, metrics, err := r.get(next, "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"egress_router_agent_active 1", `egress_router_agent_transitions_total{to="active"} 1`, "egress_router_agent_last_takeover_seconds 0."} {
				if !strings.Contains(metrics, want) {
					t.Errorf("the new leader's /metrics lacks %q", want)
				}
			}
			if f.name == graceful.name {
				if err := r.eventFor(first, "SteppedDown"); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// A frozen leader (SIGSTOP: it can neither renew nor remove anything) keeps the
// address in its kernel. The standby wins the Lease after it expires but does not add
// the address while the frozen pod still answers for it; when the old leader is
// thawed, it drops the address at once (its deadline has passed) and the new leader
// takes it. The sampler checks that they never hold it together.
func TestFrozenLeaderNeverSharesTheAddress(t *testing.T) {
	r := newRouter(t)
	r.start(0)
	old, _ := r.waitActive(10*time.Second, -1)
	r.start(1)
	standby := 1 - old
	if _, err := r.connectThrough(old); err != nil { // the gateway has an entry to update
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the standby has seen the leader's renewals
	r.pods[old].agent.signal(t, syscall.SIGSTOP)
	time.Sleep(5 * time.Second) // more than two lease durations
	if !r.holds(old) {
		t.Fatal("the frozen leader's kernel lost the address: the test proves nothing")
	}
	if r.holds(standby) {
		t.Fatal("the standby holds the address while the frozen leader does")
	}
	if holder := r.leaseHolder(); holder != r.pods[standby].name {
		t.Fatalf("the Lease is held by %q, want the standby %s (the test would not show that it waits)", holder, r.pods[standby].name)
	}
	thawed := time.Now()
	r.pods[old].agent.signal(t, syscall.SIGCONT)
	next, at := r.waitActive(5*time.Second, old)
	t.Logf("thaw → new leader active: %v", at.Sub(thawed))
	if r.holds(old) {
		t.Error("the thawed leader still holds the address")
	}
	if err := r.gatewayKnows(next); err != nil {
		t.Error(err)
	}
	r.firstConnection(3 * time.Second)
	r.assertStandby(old)
}

// A leader cut off from the API server (a partition: it runs, but cannot renew)
// gives the address up at its renew deadline, before the standby, which still reaches
// the API server, can take the Lease: the standby never finds the address answered
// for, so the fence held by timing alone, not by the standby's probe.
func TestPartitionedLeaderFencesBeforeTheStandbyTakesOver(t *testing.T) {
	r := newRouter(t)
	r.start(0)
	old, _ := r.waitActive(10*time.Second, -1)
	r.start(1)
	if _, err := r.connectThrough(old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cut := time.Now()
	r.pods[old].api.Cut()
	for r.holds(old) {
		if time.Since(cut) > 1700*time.Millisecond {
			t.Fatal("the leader still holds the address 1.7s after it lost the API server (renew deadline 1.5s)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	dropped := time.Since(cut)
	next, at := r.waitActive(5*time.Second, old)
	t.Logf("partition → leader gave the address up: %v; → standby active: %v", dropped, at.Sub(cut))
	if strings.Contains(r.pods[next].agent.logs.String(), "still answers") {
		t.Error("the new leader found the address still answered for: the fence relied on the probe")
	}
	if err := r.gatewayKnows(next); err != nil {
		t.Error(err)
	}
	r.firstConnection(3 * time.Second)
	r.pods[old].api.Restore()
	time.Sleep(2 * time.Second) // the old leader reaches the API server again, as a standby
	if r.holds(old) || r.ready(old) {
		t.Error("the old leader took the address back")
	}
	r.assertStandby(old)
}

// With the API server unreachable from both pods for longer than the lease, the
// leader gives the address up at its renew deadline (no one can tell it still leads);
// when the API server is back, one pod takes it again.
func TestAPIServerUnreachableLongerThanTheLease(t *testing.T) {
	r := newRouter(t)
	r.start(0)
	r.start(1)
	old, _ := r.waitActive(10*time.Second, -1)
	if _, err := r.connectThrough(old); err != nil { // the gateway has an entry to update
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cut := time.Now()
	for _, p := range r.pods {
		p.api.Cut()
	}
	for deadline := time.Now().Add(3 * time.Second); r.holds(old); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leader still holds the address 3s after the API server became unreachable")
		}
	}
	t.Logf("API server unreachable → address given up: %v", time.Since(cut))
	time.Sleep(3 * time.Second) // longer than the lease
	if r.holds(0) || r.holds(1) || r.ready(0) || r.ready(1) {
		t.Fatal("a pod holds the address or is ready without the API server")
	}
	for _, p := range r.pods {
		p.api.Restore()
	}
	next, _ := r.waitActive(10*time.Second, -1)
	if err := r.gatewayKnows(next); err != nil {
		t.Error(err)
	}
	r.firstConnection(3 * time.Second)
	r.assertStandby(1 - next)
}

// Forced failovers in a row, alternating graceful and crash, leave one active pod, a
// clean standby, and after DEL nothing at all. HA_FAILOVERS sets the count (the
// benchmark runs 20).
func TestRepeatedFailoversLeaveNothingBehind(t *testing.T) {
	n := 4
	if v, err := strconv.Atoi(os.Getenv("HA_FAILOVERS")); err == nil && v > 0 {
		n = v
	}
	r := newRouter(t)
	r.start(0)
	r.start(1)
	for i := range n {
		f := []fault{graceful, crash}[i%2]
		t.Logf("failover %d (%s): %v", i+1, f.name, r.failover(f))
	}
	r.assertLeavesNothing()
}

// assertLeavesNothing checks one active pod and a clean standby, then stops both
// agents (each leaves a clean standby) and runs DEL: no interface, rule or netfilter
// state of the router is left in either pod.
func (r *router) assertLeavesNothing() {
	t := r.t
	t.Helper()
	active, _ := r.waitActive(10*time.Second, -1)
	r.assertStandby(1 - active)
	for i, p := range r.pods {
		p.agent.signal(t, syscall.SIGTERM)
		p.agent.waitExit(t, 5*time.Second)
		r.assertStandby(i)
		if err := p.cni.Del(p.att); err != nil {
			t.Fatalf("DEL %s: %v", p.name, err)
		}
		if out, err := r.tp.Exec(t, p.pod.NS, "ip", "link", "show", "net1").Output(); err == nil {
			t.Errorf("net1 is left in %s:\n%s", p.name, out)
		}
		for _, list := range []string{"nft list ruleset", "iptables-save", "ip rule show"} {
			f := strings.Fields(list)
			if out := r.tp.Exec(t, p.pod.NS, f[0], f[1:]...).Run(t); strings.Contains(strings.ToLower(out), "egr") || strings.Contains(out, "17746") {
				t.Errorf("%s: %s shows the router's state:\n%s", p.name, list, out)
			}
		}
	}
}
