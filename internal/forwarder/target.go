package forwarder

import (
	"context"
	"errors"
	"net/netip"

	"github.com/egress-router/egress-router/internal/dialer"
	"github.com/egress-router/egress-router/internal/dnstable"
	"github.com/egress-router/egress-router/internal/guard"
	"github.com/egress-router/egress-router/internal/reserved"
	"github.com/egress-router/egress-router/internal/resolver"
)

// maxDialAttempts bounds how many addresses one connection tries: enough to step over
// a dead backend, few enough that a client is not kept waiting on every timeout.
const maxDialAttempts = 3

// errNoAddress closes connections that arrive before the line's name has resolved.
var errNoAddress = errors.New("no address for the destination yet")

// target is where a line's new connections go. A reload that changes the line makes a
// new target; connections already relayed keep the upstream they dialled.
type target struct {
	rule dnstable.Rule
	// dest hands out the host's addresses. A reload that keeps the host shares it (and
	// its refresh loop) with the target it replaces, so its answer is not lost.
	dest *resolver.Tracked
	// stopResolving ends dest's refresh loop; resolvingStopped is closed once it has
	// been called.
	stopResolving    context.CancelFunc
	resolvingStopped <-chan struct{}
	dialer           *dialer.Dialer
	// named is the line's IP literal, which the line names explicitly, so the guard
	// lets it through; nil for a name line.
	named []netip.Prefix
}

// newTarget builds the destination of rule. When old has the same host, the new target
// shares its resolved addresses; otherwise a name starts resolving now.
func (f *Forwarder) newTarget(rule dnstable.Rule, sources reserved.Sources, old *target) *target {
	t := &target{
		rule:   rule,
		dialer: &dialer.Dialer{Sources: sources, Timeout: f.DialTimeout},
	}
	t.dialer.Check = func(ap netip.AddrPort) error { return t.check(ap.Addr()) }
	if rule.Host.Addr.IsValid() {
		t.named = []netip.Prefix{netip.PrefixFrom(rule.Host.Addr, rule.Host.Addr.BitLen())}
	}
	if old != nil && old.rule.Host == rule.Host {
		t.dest, t.stopResolving, t.resolvingStopped = old.dest, old.stopResolving, old.resolvingStopped
		return t
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.stopResolving, t.resolvingStopped = cancel, ctx.Done()
	if rule.Host.Addr.IsValid() {
		t.dest = resolver.Fixed(rule.Host.Addr)
		return t
	}
	t.dest = &resolver.Tracked{
		Name:       rule.Host.Name,
		Resolver:   f.Resolver,
		Floor:      f.TTLFloor,
		Ceiling:    f.TTLCeiling,
		Retry:      f.Retry,
		Check:      t.check,
		PreferIPv6: f.PreferIPv6,
		Log:        f.Log,
	}
	go t.dest.Run(ctx)
	return t
}

// check is the destination guard, run on every address a name resolves to and again
// (dialer.Check) on the exact address dialled.
//
// It is guard.Check, not guard.CheckInternal: a line names its host explicitly, and
// internal servers behind names are what the DNS proxy is mainly used for. An address
// of the pod itself is refused unless the line names that IP literal
// (dialer.CheckLocal): a name resolving to the pod would make the forwarder dial its
// own listener, each connection opening the next until every connection slot is taken.
func (t *target) check(a netip.Addr) error {
	if err := guard.Check(a, t.named...); err != nil {
		return err
	}
	return dialer.CheckLocal(a, t.rule.Host.Addr)
}

// hasAddress reports whether the line can dial anything now.
func (t *target) hasAddress() bool {
	for _, a := range t.dest.Addrs() {
		if t.dialer.Usable(a) {
			return true
		}
	}
	return false
}
