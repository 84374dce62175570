package httpproxy

import (
	"github.com/egress-router/egress-router/internal/policy"
	"github.com/egress-router/egress-router/internal/reserved"
)

// Rules is what a reload replaces: the allow/deny list and the reserved source
// addresses. A request or tunnel takes one snapshot and decides and dials with it, so
// a reload never mixes old and new rules within one connection attempt.
type Rules struct {
	Policy  policy.Policy
	Sources reserved.Sources // none: the kernel chooses
}

// ruleSet is a Rules snapshot with its per-rule counters resolved.
type ruleSet struct {
	Rules
	requests, tunnels decisionCounters
}

// SetRules makes rules apply to every request and tunnel from now on; those already
// under way finish with the rules they started with.
func (s *Server) SetRules(r Rules) {
	rs := &ruleSet{Rules: r}
	rs.requests = newDecisionCounters(s.Metrics.Requests, len(r.Policy.Rules))
	rs.tunnels = newDecisionCounters(s.Metrics.Tunnels, len(r.Policy.Rules))
	s.rules.Store(rs)
}
