package httpproxy

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/egress-router/egress-router/pkg/policy"
)

// decisionLog writes one structured line per decision, at most perSecond lines a
// second: a client hammering a denied host must not turn the log into the bottleneck
// or fill the disk. Lines over the budget are counted and the count is logged when the
// next second's first line is written. Values are escaped by the JSON handler and
// capped by pkg/logging.
type decisionLog struct {
	log       *slog.Logger
	perSecond int

	mu         sync.Mutex
	second     int64
	written    int
	suppressed int
}

// record logs a decision for client about target t; dialled is the address connected
// to, if any. Rule 0 means no rule decided.
func (d *decisionLog) record(kind string, dec policy.Decision, client string, t target, dialled netip.AddrPort) {
	if !d.admit() {
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

// admit reports whether a line may be written now, and logs how many were dropped in
// the seconds before.
func (d *decisionLog) admit() bool {
	now := time.Now().Unix()
	d.mu.Lock()
	if now != d.second {
		if d.suppressed > 0 {
			d.log.Warn("decision lines suppressed by the rate limit", "count", d.suppressed)
		}
		d.second, d.written, d.suppressed = now, 0, 0
	}
	ok := d.written < d.perSecond
	if ok {
		d.written++
	} else {
		d.suppressed++
	}
	d.mu.Unlock()
	return ok
}
