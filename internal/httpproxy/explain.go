package httpproxy

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/egress-router/egress-router/internal/policy"
)

// Explanation is what the proxy would decide for one destination.
type Explanation struct {
	Target string // the destination as the proxy reads it (canonical spelling)
	// Refused is set when the name alone decides, before any resolution: no rule that
	// could allow it comes before a rule that denies it (or none matches).
	Refused *policy.Decision
	// Addrs are the addresses the name resolved to (or the literal), each decided.
	Addrs []AddrDecision
}

// AddrDecision is the decision for a dial to one address.
type AddrDecision struct {
	Addr     netip.AddrPort
	Decision policy.Decision
}

// Explain decides for hostport ("host", "host:port", "[v6]:port"; port 80 by default)
// with rules, as a request would be, resolving a name with resolve and touching the
// network no further.
func Explain(ctx context.Context, rules Rules, resolve Resolver, hostport string) (Explanation, error) {
	t, err := parseAuthority([]byte(hostport), 80)
	if err != nil {
		return Explanation{}, fmt.Errorf("%q is not a host, host:port or [IPv6]:port with one spelling", hostport)
	}
	e := Explanation{Target: t.String()}
	p, err := (&ruleSet{Rules: rules}).plan(ctx, resolve, t)
	if err != nil {
		return e, err
	}
	if p.byName {
		e.Refused = &p.decision
	}
	e.Addrs = p.addrs
	return e, nil
}
