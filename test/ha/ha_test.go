package ha_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/agent"
	"github.com/egress-router/egress-router/test/topology"
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
	// The pod vanishes: its agent is SIGKILLed and its network namespace deleted,
	// net1 and the address with it; a new pod (DEL of the old attachment, a new
	// namespace, ADD, an agent) takes its place as a standby.
	crash = fault{"crash",
		func(r *router, active int) { r.vanish(active) },
		func(r *router, old int) { r.replace(old) },
		6 * time.Second,
	}
)

// failover inflicts f on the active pod and checks the takeover: a client that keeps
// trying from the fault on gets through the other pod, which by then holds the address
// and whose MAC the gateway learnt before any traffic from it (firstConnection); the
// destination sees the reserved address. It returns the failover's timeline.
func (r *router) failover(f fault) timeline {
	r.t.Helper()
	active, _ := r.waitActive(10*time.Second, -1)
	if _, err := r.connectThrough(active); err != nil {
		r.t.Fatalf("before the fault, through %s: %v", r.pods[active].name, err)
	}
	old := r.pods[active].name
	// A fault does not wait for a moment of the leader's renewal cycle: without this,
	// each failover would come a fixed time after the previous takeover, so at the
	// same point of the cycle, and a crash's cost (the lease left since the last
	// renewal) would be that point's, not the average.
	time.Sleep(rand.N(agent.DefaultTimers.RenewInterval + agent.DefaultTimers.RetryPeriod))
	start := time.Now()
	f.inflict(r, active)
	via, served := r.firstConnection(f.within, true)
	if next, _ := r.waitActive(f.within, active); via != next {
		r.t.Errorf("served through %s, want the new leader %s", r.pods[via].name, r.pods[next].name)
	}
	if f.name == crash.name {
		r.assertLeaseRanOut(start, old)
	}
	tl := r.timeline(start, served, old, via)
	f.restore(r, active)
	return tl
}

func TestFailover(t *testing.T) {
	for _, f := range []fault{graceful, crash} {
		t.Run(f.name, func(t *testing.T) {
			r := newRouter(t)
			r.start(0)
			first, _ := r.waitActive(10*time.Second, -1)
			r.start(1)
			firstName := r.pods[first].name
			t.Logf("%s: %v", f.name, r.failover(f))
			if err := r.eventFor(firstName, "BecameActive"); err != nil {
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
				if err := r.eventFor(firstName, "SteppedDown"); err != nil {
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
	r.firstConnection(3*time.Second, true)
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
	r.assertLeaseRanOut(cut, r.pods[old].name)
	if strings.Contains(r.pods[next].agent.logs.String(), "still answers") {
		t.Error("the new leader found the address still answered for: the fence relied on the probe")
	}
	if err := r.gatewayKnows(next); err != nil {
		t.Error(err)
	}
	r.firstConnection(3*time.Second, true)
	r.pods[old].api.Restore()
	time.Sleep(2 * time.Second) // the old leader reaches the API server again, as a standby
	if r.holds(old) || r.ready(old) {
		t.Error("the old leader took the address back")
	}
	r.assertStandby(old)
}

// With the API server stopped (kube-apiserver shut down, etcd keeping the Lease) for
// longer than the lease, the leader gives the address up at its renew deadline:
// before the lease it last renewed could expire, so before anyone could take it over
// (no one can while the API server is down, and the leader cannot know that). No pod
// holds the address or is ready until the API server is back, on the same port with
// the same certificates; then exactly one pod takes it again.
func TestAPIServerStoppedLongerThanTheLease(t *testing.T) {
	r := newRouter(t)
	r.start(0)
	r.start(1)
	old, _ := r.waitActive(10*time.Second, -1)
	if _, err := r.connectThrough(old); err != nil { // the gateway has an entry to update
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stopping := time.Now()
	var stopErr error
	stopped, restarted := make(chan struct{}), false
	var stoppedAt time.Time
	go func() { stopErr = apiServer.StopAPIServer(); stoppedAt = time.Now(); close(stopped) }()
	t.Cleanup(func() {
		if !restarted { // the next test needs the API server
			<-stopped
			if err := apiServer.StartAPIServer(); err != nil {
				t.Error(err)
			}
		}
	})
	for r.holds(old) {
		if time.Since(stopping) > 5*time.Second {
			t.Fatal("the leader still holds the address 5s after the API server began to stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	dropped := time.Now()
	if <-stopped; stopErr != nil {
		t.Fatal(stopErr)
	}
	t.Logf("API server killed in %v; the leader gave the address up %v after the kill began", stoppedAt.Sub(stopping).Round(time.Millisecond), dropped.Sub(stopping).Round(time.Millisecond))
	lastRenewal := r.leases.lastChange()
	if expiry := lastRenewal.Add(agent.DefaultTimers.LeaseDuration); !dropped.Before(expiry) {
		t.Errorf("the leader gave the address up %v after its lease could expire (last renewal seen %v before it)", dropped.Sub(expiry), dropped.Sub(lastRenewal))
	} else {
		t.Logf("last renewal → address given up %v (renew deadline %v, lease %v)", dropped.Sub(lastRenewal).Round(time.Millisecond), agent.DefaultTimers.RenewDeadline, agent.DefaultTimers.LeaseDuration)
	}
	for time.Since(lastRenewal) < 2*agent.DefaultTimers.LeaseDuration { // down for longer than the lease
		if r.holds(0) || r.holds(1) || r.ready(0) || r.ready(1) {
			t.Fatal("a pod holds the address or is ready while the API server is down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	restarting := time.Now()
	restarted = true
	if err := apiServer.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	next, at := r.waitActive(10*time.Second, -1)
	t.Logf("API server down %v; restart → healthy %v; → %s active %v", restarting.Sub(stopping).Round(time.Millisecond),
		time.Since(restarting).Round(time.Millisecond), r.pods[next].name, at.Sub(restarting).Round(time.Millisecond))
	// When the old leader takes the address back, the gateway may have been probing its
	// MAC while it held nothing (seen: the gateway sent to the address as the outage
	// began): the kernel leaves a probing entry as it is when an announcement brings the
	// MAC it already has, so the entry can end FAILED, and the first packet resolves it
	// again (one ARP exchange). The announcement is checked when the other pod takes over.
	r.firstConnection(3*time.Second, next != old)
	time.Sleep(agent.DefaultTimers.LeaseDuration) // the other pod has competed too, and lost
	r.assertStandby(1 - next)
	if r.ready(1 - next) {
		t.Errorf("%s is ready as well as the leader %s", r.pods[1-next].name, r.pods[next].name)
	}
}

// A dual-stack router moves its IPv6 address too: after a graceful handoff and a
// crash, the gateway's neighbour entry for the reserved IPv6 address holds the new
// leader's MAC before any traffic from it (its unsolicited neighbour advertisement;
// firstConnection checks every reserved address), and the destination sees the
// reserved IPv6 address through the new leader.
func TestDualStackFailover(t *testing.T) {
	r := newRouterOf(t, dualStackConf)
	r.start(0)
	r.start(1)
	for _, f := range []fault{graceful, crash} {
		active, _ := r.waitActive(10*time.Second, -1)
		if src, err := r.connectThrough6(active); err != nil || src != topology.Reserved6.Addr().String() { // the gateway has an entry to update
			t.Fatalf("before the fault, over IPv6 through %s: source %q, %v", r.pods[active].name, src, err)
		}
		t.Logf("%s: %v", f.name, r.failover(f))
		next, _ := r.waitActive(10*time.Second, -1)
		if src, err := r.connectThrough6(next); err != nil || src != topology.Reserved6.Addr().String() {
			t.Errorf("after the %s, over IPv6 through %s: source %q, %v, want %s", f.name, r.pods[next].name, src, err, topology.Reserved6.Addr())
		}
	}
	r.assertLeavesNothing()
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
