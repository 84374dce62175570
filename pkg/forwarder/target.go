package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/egress-router/egress-router/pkg/dialer"
	"github.com/egress-router/egress-router/pkg/forward"
	"github.com/egress-router/egress-router/pkg/guard"
	"github.com/egress-router/egress-router/pkg/resolver"
)

// maxDialAttempts bounds how many addresses one connection tries: enough to step over
// a dead backend, few enough that a client is not kept waiting on every timeout.
const maxDialAttempts = 3

// errNoAddress closes connections that arrive before the line's name has resolved.
var errNoAddress = errors.New("no address for the destination yet")

// target is where a line's new connections go. A reload that changes the line swaps in
// a new target; connections already relayed keep the upstream they dialled.
type target struct {
	rule   forward.Rule
	dest   *resolver.Tracked
	stop   context.CancelFunc // ends dest's refresh loop
	dialer *dialer.Dialer
	// named is the line's IP literal, which the line names explicitly, so the guard
	// lets it through; nil for a name line.
	named []netip.Prefix
}

// check is the destination guard, run on every address a name resolves to and again
// on the exact address dialled.
func (t *target) check(a netip.Addr) error {
	return guard.Check(a, t.named...)
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

// dial connects to the line's destination, stepping to the next address when one
// fails; a failed address is skipped by the next connections too.
func (t *target) dial(ctx context.Context) (*net.TCPConn, error) {
	var errs []error
	for range min(maxDialAttempts, max(len(t.dest.Addrs()), 1)) {
		a, ok := t.dest.Pick(t.dialer.Usable)
		if !ok {
			return nil, errNoAddress
		}
		c, err := t.dialer.Dial(ctx, netip.AddrPortFrom(a, t.rule.RemotePort))
		if err == nil {
			return c, nil
		}
		t.dest.Refused(a)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("dial %s: %w", t.rule.Host, errors.Join(errs...))
}
