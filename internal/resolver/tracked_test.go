package resolver

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/guard"
	"github.com/egress-router/egress-router/internal/resolver/dnstest"
)

// tracked returns a Tracked on a fresh test server, with short timings.
func tracked(t *testing.T, name string) (*Tracked, *dnstest.Server) {
	srv := dnstest.Start(t, nil)
	return &Tracked{
		Name:     name,
		Resolver: &Resolver{Servers: []string{srv.Addr}, Timeout: 100 * time.Millisecond},
		Floor:    50 * time.Millisecond,
		Retry:    50 * time.Millisecond,
		Check:    func(a netip.Addr) error { return guard.Check(a) },
		Log:      slog.New(slog.DiscardHandler),
	}, srv
}

func run(t *testing.T, tr *Tracked) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRefreshKeepsTheAnswerForItsTTLClampedToFloorAndCeiling(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ttl            uint32
		floor, ceiling time.Duration
		want           time.Duration
	}{
		{"ttl within bounds", 30, time.Second, time.Minute, 30 * time.Second},
		{"ttl zero raised to the floor", 0, 2 * time.Second, time.Minute, 2 * time.Second},
		{"long ttl cut to the ceiling", 86400, time.Second, time.Minute, time.Minute},
		{"defaults", 1, 0, 0, DefaultFloor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, srv := tracked(t, "a.example.com")
			tr.Floor, tr.Ceiling = tc.floor, tc.ceiling
			srv.Set("a.example.com", tc.ttl, addr1)
			got, err := tr.Refresh(context.Background())
			if err != nil || got != tc.want {
				t.Fatalf("kept for %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestRunRefreshesOnlyWhenTheTTLRunsOut(t *testing.T) {
	tr, srv := tracked(t, "a.example.com")
	srv.Set("a.example.com", 1, addr1)
	run(t, tr)
	eventually(t, "first answer", func() bool { return len(tr.Addrs()) > 0 })
	first := srv.Queries("a.example.com")
	srv.Set("a.example.com", 1, addr2)
	time.Sleep(500 * time.Millisecond)
	if q := srv.Queries("a.example.com"); q != first || tr.Addrs()[0] != addr1 {
		t.Fatalf("re-queried before the 1s TTL ran out (%d queries, addresses %v)", q-first, tr.Addrs())
	}
	eventually(t, "the new answer after the TTL", func() bool { return slices.Equal(tr.Addrs(), []netip.Addr{addr2}) })
}

func TestDNSOutageKeepsTheLastAnswer(t *testing.T) {
	tr, srv := tracked(t, "a.example.com")
	srv.Set("a.example.com", 0, addr1, addr2)
	if _, err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.SetDown(true)
	if _, err := tr.Refresh(context.Background()); err == nil {
		t.Fatal("refresh with the server down succeeded")
	}
	if !slices.Equal(tr.Addrs(), []netip.Addr{addr1, addr2}) || tr.Failures() != 1 {
		t.Fatalf("after a failed refresh: addresses %v, failures %d", tr.Addrs(), tr.Failures())
	}
	srv.Set("a.example.com", 0)
	srv.SetDown(false)
	if _, err := tr.Refresh(context.Background()); err == nil || !slices.Equal(tr.Addrs(), []netip.Addr{addr1, addr2}) {
		t.Fatalf("a name that stopped existing: %v, addresses %v; want an error and the last answer", err, tr.Addrs())
	}
}

func TestStartWithDNSDownThenRecover(t *testing.T) {
	tr, srv := tracked(t, "a.example.com")
	srv.SetDown(true)
	run(t, tr)
	eventually(t, "retries", func() bool { return tr.Failures() >= 2 })
	if _, ok := tr.Pick(nil); ok {
		t.Fatal("an address was picked before any answer")
	}
	srv.Set("a.example.com", 60, addr1)
	srv.SetDown(false)
	eventually(t, "an answer once DNS is back", func() bool { a, ok := tr.Pick(nil); return ok && a == addr1 })
}

func TestRetriesBackOffUpToALimit(t *testing.T) {
	got := []time.Duration{}
	d := time.Duration(0)
	for range 8 {
		d = nextRetry(d, time.Second, 0)
		got = append(got, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("retry intervals %v, want %v seconds", got, want)
		}
	}
}

func TestRebindToAGuardedAddressIsRefused(t *testing.T) {
	tr, srv := tracked(t, "a.example.com")
	srv.Set("a.example.com", 0, addr1)
	if _, err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, rebind := range []string{"127.0.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1"} {
		srv.Set("a.example.com", 0, netip.MustParseAddr(rebind))
		if _, err := tr.Refresh(context.Background()); err == nil {
			t.Errorf("rebind to %s accepted", rebind)
		}
		if !slices.Equal(tr.Addrs(), []netip.Addr{addr1}) {
			t.Fatalf("after a rebind to %s the addresses are %v", rebind, tr.Addrs())
		}
	}
	// Mixed with a good address, the guarded one is dropped and the good one used.
	srv.Set("a.example.com", 0, addr2, netip.MustParseAddr("169.254.169.254"))
	if _, err := tr.Refresh(context.Background()); err != nil || !slices.Equal(tr.Addrs(), []netip.Addr{addr2}) {
		t.Fatalf("mixed answer: %v, addresses %v; want only %s", err, tr.Addrs(), addr2)
	}
}

func TestPickSpreadsOverThePreferredFamilyFirst(t *testing.T) {
	v6b := netip.MustParseAddr("2001:db8:20::2")
	for _, tc := range []struct {
		name       string
		preferIPv6 bool
		usable     func(netip.Addr) bool
		want       []netip.Addr
	}{
		{"IPv4 by default", false, nil, []netip.Addr{addr1, addr2}},
		{"IPv6 when preferred", true, nil, []netip.Addr{addr6, v6b}},
		{"the other family when the preferred is unusable", false, netip.Addr.Is6, []netip.Addr{addr6, v6b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tracked{PreferIPv6: tc.preferIPv6}
			tr.store([]netip.Addr{addr1, addr6, addr2, v6b}, time.Now())
			seen := map[netip.Addr]int{}
			for range 10 {
				a, ok := tr.Pick(tc.usable)
				if !ok {
					t.Fatal("nothing picked")
				}
				seen[a]++
			}
			if len(seen) != len(tc.want) || seen[tc.want[0]] != 5 || seen[tc.want[1]] != 5 {
				t.Fatalf("picked %v, want %v five times each", seen, tc.want)
			}
		})
	}
}

// Each family is its own round robin: with two IPv4 addresses and one IPv6, the IPv4
// pair shares the connections evenly (a turn taken over all three skewed it 2:1).
func TestPickSharesEvenlyWithinThePreferredFamily(t *testing.T) {
	tr := &Tracked{}
	tr.store([]netip.Addr{addr1, addr6, addr2}, time.Now())
	seen := map[netip.Addr]int{}
	for range 300 {
		a, _ := tr.Pick(nil)
		seen[a]++
	}
	if want := map[netip.Addr]int{addr1: 150, addr2: 150}; !maps.Equal(seen, want) {
		t.Fatalf("picked %v, want %v", seen, want)
	}
}

func TestAnsweredIsClosedAtTheFirstAnswerOnly(t *testing.T) {
	tr, srv := tracked(t, "a.example.com")
	select {
	case <-tr.Answered():
		t.Fatal("answered before any lookup")
	default:
	}
	srv.Set("a.example.com", 60, addr1)
	if _, err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Refresh(context.Background()); err != nil {
		t.Fatal(err) // a second answer must not close the channel again
	}
	select {
	case <-tr.Answered():
	default:
		t.Fatal("not answered after a successful lookup")
	}
}

func TestPickSkipsAnAddressThatRefusedUntilItsTimeIsUp(t *testing.T) {
	tr := Fixed(addr1, addr2)
	tr.RefusedFor = 200 * time.Millisecond
	tr.Refused(addr1)
	for range 4 {
		if a, _ := tr.Pick(nil); a != addr2 {
			t.Fatalf("picked %s, which refused a moment ago", a)
		}
	}
	tr.Refused(addr2)
	if _, ok := tr.Pick(nil); !ok {
		t.Fatal("with every address refused, nothing is tried")
	}
	time.Sleep(250 * time.Millisecond)
	seen := map[netip.Addr]bool{}
	for range 2 {
		a, _ := tr.Pick(nil)
		seen[a] = true
	}
	if !seen[addr1] || !seen[addr2] {
		t.Fatalf("after RefusedFor both should be back in turn, picked %v", seen)
	}
}

func TestFixedNeverResolves(t *testing.T) {
	tr := Fixed(addr1)
	done := make(chan struct{})
	go func() { tr.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run of a fixed address did not return")
	}
	if a, ok := tr.Pick(nil); !ok || a != addr1 {
		t.Fatalf("picked %s %v", a, ok)
	}
}
