// Package forwarder is the engine of egress-dns-proxy: a TCP listener per forwarding
// line, accepting in the relay's event loops, each accepted connection connected and
// relayed there (internal/relay, splice kept) to the line's destination from the
// reserved source address (internal/dialer), with names re-resolved at run time
// (internal/resolver). SetRules takes new lines without dropping established
// connections; Shutdown drains.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/dnstable"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/relay"
	"github.com/egress-router/egress-router/internal/reserved"
	"github.com/egress-router/egress-router/internal/resolver"
)

// dialFailureLogsPerSecond caps the "cannot reach the destination" lines: a dead
// destination fails every connection, and one line each must not flood the log.
const dialFailureLogsPerSecond = 10

// Forwarder relays the lines of a dns-proxy configuration. Set the fields, then call
// SetRules with the first lines.
type Forwarder struct {
	// ListenAddr is the address every line's listener binds; "" means all addresses.
	ListenAddr string
	Resolver   *resolver.Resolver
	// TTLFloor, TTLCeiling and Retry shape re-resolution (see resolver.Tracked).
	TTLFloor, TTLCeiling, Retry time.Duration
	PreferIPv6                  bool
	DialTimeout                 time.Duration // zero: dialer's default
	Relay                       relay.Relay
	// Limiter caps open connections across all lines; nil means uncapped.
	Limiter *connlimit.Limiter
	Log     *slog.Logger // nil: slog.Default()

	mu       sync.Mutex
	lines    map[uint16]*line
	order    []uint16 // the configuration's line order, for Ready and the metrics
	inFlight *inFlight
	// overCap counts connections refused because a connection cap was full.
	overCap      atomic.Int64
	dialFailures logging.Budget
}

// Rules is what the forwarder serves: its lines (dnsProxy.destinations) and the
// reserved source addresses its connections leave from (none: the kernel chooses).
type Rules struct {
	Lines   []dnstable.Rule
	Sources reserved.Sources
}

// SetRules makes rules' lines the ones served. New lines listen, removed lines stop
// accepting (their connections finish), changed lines send new connections to their
// new destination. If a new listener cannot be opened nothing changes.
func (f *Forwarder) SetRules(rules Rules) error {
	if len(rules.Lines) == 0 {
		return errors.New("the configuration has no dnsProxy.destinations lines")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lines == nil {
		f.init()
	}
	added, err := f.listenNew(rules.Lines)
	if err != nil {
		return err
	}
	keep := map[uint16]bool{}
	for _, r := range rules.Lines {
		keep[r.Port] = true
		if l, ok := added[r.Port]; ok {
			l.configure(f.newTarget(r, rules.Sources, nil))
			f.lines[r.Port] = l
			l.listener.Start() // it has a target to serve now
			f.Log.Info("line added", "line", r.String())
			continue
		}
		l := f.lines[r.Port]
		old := l.configured
		if old.rule == r && slices.Equal(old.dialer.Sources, rules.Sources) {
			continue
		}
		t := f.newTarget(r, rules.Sources, old)
		if !l.configure(t) {
			go f.serveWhenAnswered(l, t)
		}
		f.Log.Info("line changed", "line", r.String(), "was", old.rule.String())
	}
	for port, l := range f.lines {
		if !keep[port] {
			l.close()
			delete(f.lines, port)
			f.Log.Info("line removed; its open connections finish", "line", l.configured.rule.String())
		}
	}
	f.order = f.order[:0]
	for _, r := range rules.Lines {
		f.order = append(f.order, r.Port)
	}
	return nil
}

// init sets up what the first SetRules needs and the defaults of unset fields.
func (f *Forwarder) init() {
	f.lines = map[uint16]*line{}
	f.inFlight = newInFlight()
	f.dialFailures.PerSecond = dialFailureLogsPerSecond
	if f.Limiter == nil {
		f.Limiter = &connlimit.Limiter{}
	}
	if f.Log == nil {
		f.Log = slog.Default()
	}
}

// serveWhenAnswered lets t serve its line once its new name first answers, unless a
// later reload replaced it (or removed the line) first.
func (f *Forwarder) serveWhenAnswered(l *line, t *target) {
	select {
	case <-t.dest.Answered():
	case <-t.resolvingStopped:
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.configured == t && f.lines[l.port] == l {
		l.serve(t)
		f.Log.Info("line's new destination answered; new connections go there", "line", t.rule.String())
	}
}

// listenNew opens the listeners of lines not served yet; on any failure it closes the
// ones it opened. Each accepts in the relay's event loops (relay.Accept), once
// started: a forwarded connection never passes through Go's poller.
func (f *Forwarder) listenNew(rules []dnstable.Rule) (map[uint16]*line, error) {
	added := map[uint16]*line{}
	for _, r := range rules {
		if _, ok := f.lines[r.Port]; ok {
			continue
		}
		l := &line{port: r.Port}
		accept := relay.Accept{
			Control:  keepAliveInherited,
			Accepted: func(c *relay.Accepted) { f.accepted(l, c) },
			Failed:   f.acceptFailed,
		}
		ln, err := accept.Listen(net.JoinHostPort(f.ListenAddr, strconv.Itoa(int(r.Port))))
		if err != nil {
			for _, l := range added {
				l.listener.Close()
			}
			return nil, fmt.Errorf("line %q: %w", r.String(), err)
		}
		l.listener = ln
		added[r.Port] = l
	}
	return added, nil
}

func (f *Forwarder) debugging() bool {
	return f.Log.Enabled(context.Background(), slog.LevelDebug)
}

// survive, deferred, recovers a panic in one connection's handling, closes the
// client (closeClient, if the connection still has it) and logs it: a bug in one
// connection must not take the others down with the process.
func (f *Forwarder) survive(l *line, closeClient func()) {
	if p := recover(); p != nil {
		if closeClient != nil {
			closeClient()
		}
		f.Log.Error("panic while relaying a connection", "port", l.port, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
}

func (f *Forwarder) refusedOverCap(client netip.Addr) {
	f.overCap.Add(1)
	f.Log.Debug("connection refused: connection cap reached", "client", client.String())
}

func (f *Forwarder) acceptFailed(err error) {
	f.Log.Error("accept failed; waiting before the next", "error", err)
}

// logDialFailure logs a connection closed for want of a destination, within the
// dialFailures budget, saying how many such lines the budget dropped before.
func (f *Forwarder) logDialFailure(t *target, client netip.AddrPort, err error) {
	ok, dropped := f.dialFailures.Admit()
	if dropped > 0 {
		f.Log.Warn("connection-closed lines suppressed by the rate limit", "count", dropped)
	}
	if ok {
		f.Log.Warn("connection closed: cannot reach the destination", "line", t.rule.String(), "client", client.String(), "error", err)
	}
}
