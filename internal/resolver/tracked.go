package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Tracked's zero fields.
const (
	DefaultFloor      = 5 * time.Second
	DefaultCeiling    = 5 * time.Minute
	DefaultRetry      = time.Second
	DefaultRefusedFor = 30 * time.Second
	maxRetry          = 30 * time.Second
)

// Tracked keeps one name's addresses current and hands them out to new connections.
// Answers are refreshed when their TTL (clamped to [Floor, Ceiling]) runs out; a
// failed refresh keeps the last good answer and is retried with a growing interval,
// so a DNS outage does not stop traffic to addresses that still work.
type Tracked struct {
	Name     string
	Resolver *Resolver
	Floor    time.Duration // shortest time an answer is kept; zero means DefaultFloor
	Ceiling  time.Duration // longest; zero means DefaultCeiling
	Retry    time.Duration // first retry after a failed refresh; zero means DefaultRetry
	// Check refuses an address (the destination guard). It runs on every answer, so a
	// name that starts resolving to a guarded address (DNS rebinding) is caught; refused
	// addresses are dropped and logged, and an answer with nothing left counts as a
	// failed refresh.
	Check func(netip.Addr) error
	// PreferIPv6 hands out AAAA addresses before A addresses; IPv4 comes first by default.
	PreferIPv6 bool
	// RefusedFor is how long an address that refused a connection is skipped; zero
	// means DefaultRefusedFor.
	RefusedFor time.Duration
	// Log hears of answers, refused addresses and failures; required when Name is set.
	Log *slog.Logger

	current  atomic.Pointer[answerState]
	next     atomic.Uint64
	failures atomic.Uint64
	mu       sync.Mutex
	refused  map[netip.Addr]time.Time
	answered chan struct{} // closed at the first answer; see Answered
}

type answerState struct {
	addrs     []netip.Addr // preferred family first
	preferred int          // how many of addrs are of the preferred family
	updated   time.Time
}

// Fixed returns a Tracked that always has addrs and never resolves: a forwarding line
// with an IP literal hands out its address through the same code as a name.
func Fixed(addrs ...netip.Addr) *Tracked {
	t := &Tracked{}
	t.store(addrs, time.Now())
	return t
}

// Run refreshes the answer until ctx ends. A Tracked without a Name returns at once.
func (t *Tracked) Run(ctx context.Context) {
	if t.Name == "" {
		return
	}
	retry := time.Duration(0)
	for {
		wait, err := t.Refresh(ctx)
		if err != nil {
			retry = nextRetry(retry, t.Retry, t.Ceiling)
			wait = retry
		} else {
			retry = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func nextRetry(last, first, ceiling time.Duration) time.Duration {
	if first == 0 {
		first = DefaultRetry
	}
	limit := min(maxRetry, orDefault(ceiling, DefaultCeiling))
	if last == 0 {
		return min(first, limit)
	}
	return min(2*last, limit)
}

// Refresh resolves the name once and, on success, replaces the answer. It returns how
// long the new answer may be kept.
func (t *Tracked) Refresh(ctx context.Context) (time.Duration, error) {
	answer, err := t.Resolver.Lookup(ctx, t.Name)
	if err == nil {
		answer.Addrs, err = t.checked(answer.Addrs)
	}
	if err != nil {
		t.failures.Add(1)
		if s := t.current.Load(); s != nil {
			t.Log.Warn("name resolution failed; keeping the last answer", "name", t.Name, "addresses", addrStrings(s.addrs), "error", err)
		} else {
			t.Log.Warn("name resolution failed; no address yet, connections are closed until one resolves", "name", t.Name, "error", err)
		}
		return 0, err
	}
	if old := t.current.Load(); old == nil || !sameSet(old.addrs, answer.Addrs) {
		t.Log.Info("name resolved", "name", t.Name, "addresses", addrStrings(answer.Addrs), "ttl", answer.TTL)
	}
	t.store(answer.Addrs, time.Now())
	return min(max(answer.TTL, orDefault(t.Floor, DefaultFloor)), orDefault(t.Ceiling, DefaultCeiling)), nil
}

// checked drops the addresses Check refuses, logging each.
func (t *Tracked) checked(addrs []netip.Addr) ([]netip.Addr, error) {
	if t.Check == nil {
		return addrs, nil
	}
	kept := addrs[:0:0]
	for _, a := range addrs {
		if err := t.Check(a); err != nil {
			t.Log.Error("resolved address refused", "name", t.Name, "address", a.String(), "error", err)
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("resolve %s: every address was refused", t.Name)
	}
	return kept, nil
}

func (t *Tracked) store(addrs []netip.Addr, now time.Time) {
	s := &answerState{addrs: make([]netip.Addr, 0, len(addrs)), updated: now}
	for _, preferred := range []bool{true, false} {
		for _, a := range addrs {
			if (a.Is6() == t.PreferIPv6) == preferred {
				s.addrs = append(s.addrs, a)
			}
		}
		if preferred {
			s.preferred = len(s.addrs)
		}
	}
	t.current.Store(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.answeredLocked():
	default:
		close(t.answered)
	}
	// Forget refusals of addresses the name no longer has, so the map stays small.
	for a := range t.refused {
		if !slices.Contains(s.addrs, a) {
			delete(t.refused, a)
		}
	}
}

// Addrs returns the current addresses, preferred family first; nil before the first
// answer.
func (t *Tracked) Addrs() []netip.Addr {
	if s := t.current.Load(); s != nil {
		return s.addrs
	}
	return nil
}

// Answered returns a channel closed once the name has its first answer: a reload that
// moves a line to a new name waits on it before letting the old destination go.
func (t *Tracked) Answered() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.answeredLocked()
}

// answeredLocked creates the Answered channel on first use. Callers hold t.mu.
func (t *Tracked) answeredLocked() chan struct{} {
	if t.answered == nil {
		t.answered = make(chan struct{})
	}
	return t.answered
}

// Updated is when the current answer was obtained; zero before the first answer.
func (t *Tracked) Updated() time.Time {
	if s := t.current.Load(); s != nil {
		return s.updated
	}
	return time.Time{}
}

// Failures counts failed refreshes.
func (t *Tracked) Failures() uint64 { return t.failures.Load() }

// Pick returns the address for a new connection: round robin over the preferred
// family's addresses that usable accepts (nil accepts all) and that have not refused a
// connection recently, then over the other family's. When every usable address refused
// recently, they are tried again in turn rather than giving up: one may be back.
func (t *Tracked) Pick(usable func(netip.Addr) bool) (netip.Addr, bool) {
	s := t.current.Load()
	if s == nil {
		return netip.Addr{}, false
	}
	// The turn is taken modulo each family's own size: modulo the whole list first
	// would favour the addresses of the larger share of it (two IPv4 and one IPv6
	// gave 2:1 over the IPv4 pair).
	n := t.next.Add(1)
	groups := [2][]netip.Addr{s.addrs[:s.preferred], s.addrs[s.preferred:]}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, skipRefused := range []bool{true, false} {
		for _, g := range groups {
			for i := range g {
				a := g[(n+uint64(i))%uint64(len(g))]
				if (usable == nil || usable(a)) && !(skipRefused && t.refusedSince(a, now)) {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// refusedSince reports whether a refused a connection within RefusedFor of now.
// Callers hold t.mu.
func (t *Tracked) refusedSince(a netip.Addr, now time.Time) bool {
	at, ok := t.refused[a]
	if !ok {
		return false
	}
	if now.Sub(at) >= orDefault(t.RefusedFor, DefaultRefusedFor) {
		delete(t.refused, a)
		return false
	}
	return true
}

// Refused records that a refused a connection, so Pick skips it for a while.
func (t *Tracked) Refused(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refused == nil {
		t.refused = map[netip.Addr]time.Time{}
	}
	t.refused[a] = time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func sameSet(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
