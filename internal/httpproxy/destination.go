package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/egress-router/egress-router/internal/dialer"
	"github.com/egress-router/egress-router/internal/policy"
)

// Resolver returns the addresses a host name resolves to; its errors name the host.
// It is a function so the proxy does not care which resolver (the shared one, net's
// pure-Go one, a test's) answers.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

var (
	errDenied  = errors.New("denied by the egress policy")
	errLoop    = errors.New("the destination is this proxy")
	errTimeout = errors.New("upstream timed out")
	errNoAddrs = errors.New("no addresses")
)

// plan is what the rules say of a target before any dial.
type plan struct {
	// decision is the one that counts for logs and metrics: the first allowing one,
	// or, when none allows, the first refusal.
	decision policy.Decision
	// byName says the name alone refused the target: no rule that could allow it
	// comes before one that denies it (or none matches), so it was not resolved.
	byName bool
	// addrs are the addresses the name resolved to (or the literal), each decided.
	addrs []AddrDecision
}

// plan decides for t with the rules of rs: a name is resolved once with resolve, and
// every address it resolved to is decided on its own. Both a dial (open) and -explain
// go through it, so what -explain says is what a request gets.
func (rs *ruleSet) plan(ctx context.Context, resolve Resolver, t target) (plan, error) {
	if t.host != "" && !rs.Policy.AllowsName(t.host) {
		return plan{decision: rs.Policy.Decide(t.host, netip.Addr{}), byName: true}, nil
	}
	addrs := []netip.Addr{t.addr}
	if t.host != "" {
		var err error
		if addrs, err = resolve(ctx, t.host); err != nil {
			return plan{}, err
		}
		if len(addrs) == 0 {
			return plan{}, fmt.Errorf("resolve %s: %w", t.host, errNoAddrs)
		}
	}
	p := plan{addrs: make([]AddrDecision, len(addrs))}
	allowed := false
	for i, a := range addrs {
		d := rs.decide(t, a)
		p.addrs[i] = AddrDecision{netip.AddrPortFrom(a, t.port), d}
		if i == 0 || (d.Allow && !allowed) {
			p.decision = d
		}
		allowed = allowed || d.Allow
	}
	return p, nil
}

// open decides for t with the rules of rs (plan) and connects to an allowed address,
// trying them in order. The dialer checks the decision again in net.Dialer.Control on
// the exact address connect(2) gets, so the address dialled is always one that was
// checked. It returns the connection, unbuffered, and the plan's decision.
func (s *Server) open(ctx context.Context, rs *ruleSet, t target) (*upstream, policy.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	start := time.Now()
	p, err := rs.plan(ctx, s.Resolve, t)
	if err != nil {
		return nil, policy.Refused(err), s.classify(ctx, "resolve", err)
	}
	if !p.decision.Allow {
		return nil, p.decision, errDenied
	}
	d := dialer.Dialer{Sources: rs.Sources, Timeout: s.DialTimeout, Check: func(dst netip.AddrPort) error {
		if s.isSelf(dst) {
			return errLoop
		}
		if d := rs.decide(t, dst.Addr()); !d.Allow {
			return fmt.Errorf("%w: %s", errDenied, d.Reason())
		}
		return nil
	}}
	for _, a := range p.addrs {
		if !a.Decision.Allow {
			continue
		}
		var c *net.TCPConn
		if c, err = d.Dial(ctx, a.Addr); err == nil {
			s.Metrics.DialSeconds.Observe(time.Since(start).Seconds())
			return &upstream{tcp: c, target: t, addr: a.Addr, source: rs.source(a.Addr.Addr())}, p.decision, nil
		}
		if errors.Is(err, errLoop) || errors.Is(err, errDenied) {
			return nil, policy.Refused(err), errDenied
		}
	}
	return nil, p.decision, s.classify(ctx, "", err)
}

// decide is the policy's decision for a dial to a, refused also when a is an address
// of this pod that no address rule names exactly (dialer.CheckLocal, the DNS proxy's
// check too), or when no reserved address of a's family exists to leave from.
func (rs *ruleSet) decide(t target, a netip.Addr) policy.Decision {
	d := rs.Policy.Decide(t.host, a)
	if !d.Allow {
		return d
	}
	if err := dialer.CheckLocal(a, rs.Policy.NamedAddrs()...); err != nil {
		return policy.Refused(err)
	}
	if !(&dialer.Dialer{Sources: rs.Sources}).Usable(a) {
		return policy.Refused(dialer.ErrNoSource)
	}
	return d
}

// source is the reserved address a dial to dst leaves from; invalid when the kernel
// chooses.
func (rs *ruleSet) source(dst netip.Addr) netip.Addr {
	src, _ := rs.Sources.For(dst)
	return src
}

// classify counts a failed resolution (stage "resolve") or connection attempt, by
// stage or else by cause, and marks a timeout (504) apart from an unreachable
// upstream (502). A dial Shutdown cut is not counted.
func (s *Server) classify(ctx context.Context, stage string, err error) error {
	if s.base.Err() != nil {
		return err // Shutdown cut it past its grace period: no fault of the destination's
	}
	timeout := ctx.Err() != nil || isTimeout(err)
	reason := stage
	switch {
	case reason != "":
	case timeout:
		reason = "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "refused"
	default:
		reason = "other"
	}
	s.Metrics.DialErrors.WithLabelValues(reason).Inc()
	if timeout {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	return err
}

// isSelf reports a destination one of this proxy's listeners accepts: a request
// looping back through the proxy. It is refused even when an address rule names the
// address, which lifts decide's refusal of the pod's other ports. It matches what the
// kernel would connect to, not the port alone: an origin on the same port of another
// local address is not the proxy.
func (s *Server) isSelf(dst netip.AddrPort) bool {
	d := dst.Addr().Unmap().WithZone("")
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		la := ln.Addr().(*net.TCPAddr).AddrPort()
		if la.Port() != dst.Port() {
			continue
		}
		a := la.Addr().Unmap().WithZone("")
		switch {
		// A connect to the unspecified address goes to the host itself.
		case d.IsUnspecified(), a == d:
			return true
		// An unspecified listener accepts on every local address of its family, and
		// [::] (dual-stack) on IPv4 ones as well.
		case a.IsUnspecified() && (a.Is6() || d.Is4()) && dialer.IsLocal(d):
			return true
		}
	}
	return false
}
