package httpproxy

import (
	"log/slog"
	"net/netip"

	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/policy"
)

// decisionLog writes one structured line per decision, within a per-second budget
// (logging.Budget). Values are escaped by the JSON handler and capped by internal/logging.
type decisionLog struct {
	log    *slog.Logger
	budget logging.Budget
}

// record logs a decision for client about target t; dialled is the address connected
// to, if any. Rule 0 means no rule decided.
func (d *decisionLog) record(kind string, dec policy.Decision, client string, t target, dialled netip.AddrPort) {
	ok, dropped := d.budget.Admit()
	if dropped > 0 {
		d.log.Warn("decision lines suppressed by the rate limit", "count", dropped)
	}
	if !ok {
		return
	}
	decision := "deny"
	if dec.Allow {
		decision = "allow"
	}
	attrs := []any{"kind", kind, "decision", decision, "rule", dec.Rule + 1, "reason", dec.Reason(), "client", client, "target", t.String()}
	if dialled.IsValid() {
		attrs = append(attrs, "dialled", dialled.String())
	}
	d.log.Info("decision", attrs...)
}

// record counts and logs one decision of a request or tunnel ("request", "tunnel"),
// with the address dialled when it was allowed.
func (c *clientConn) record(kind string, counters decisionCounters, d policy.Decision, t target) {
	counters.count(d.Allow, d.Rule)
	var dialled netip.AddrPort
	if c.up != nil && d.Allow {
		dialled = c.up.addr
	}
	c.s.decisions.record(kind, d, c.peer, t, dialled)
}
