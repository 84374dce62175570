package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/egress-router/egress-router/pkg/dialer"
	"github.com/egress-router/egress-router/pkg/policy"
)

// Resolver returns the addresses a host name resolves to. It is a function so the
// proxy does not care which resolver (the shared one, net's pure-Go one, a test's)
// answers.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

var (
	errDenied      = errors.New("denied by the egress policy")
	errLoop        = errors.New("the destination is this proxy")
	errUnreachable = errors.New("upstream unreachable")
	errTimeout     = errors.New("upstream timed out")
)

// open decides for t with the rules of rs and connects to an allowed address. A name
// is resolved once; every address it resolved to is decided on its own, and only those
// allowed are dialled. The dialer checks the decision again in net.Dialer.Control on
// the exact address connect(2) gets, so the address dialled is always one that was
// checked. The decision returned is the one that counts for logs and metrics: the
// first allowing one, or, when none allows, the first refusal.
func (s *Server) open(ctx context.Context, rs *ruleSet, t target) (*net.TCPConn, netip.AddrPort, policy.Decision, error) {
	p := &rs.Policy
	if t.host != "" && !p.AllowsName(t.host) {
		return nil, netip.AddrPort{}, p.Decide(t.host, netip.Addr{}), errDenied
	}
	ctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	start := time.Now()
	addrs := []netip.Addr{t.addr}
	if t.host != "" {
		var err error
		if addrs, err = s.Resolve(ctx, t.host); err != nil || len(addrs) == 0 {
			s.Metrics.DialErrors.WithLabelValues("resolve").Inc()
			err = fmt.Errorf("resolve %s: %w", t.host, err)
			return nil, netip.AddrPort{}, policy.Refused(err), s.classify(ctx, err)
		}
	}
	decision, allowed := rs.candidates(t, addrs)
	if len(allowed) == 0 {
		return nil, netip.AddrPort{}, decision, errDenied
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
	var err error
	for _, dst := range allowed {
		var c *net.TCPConn
		if c, err = d.Dial(ctx, dst); err == nil {
			s.Metrics.DialSeconds.Observe(time.Since(start).Seconds())
			return c, dst, decision, nil
		}
		if errors.Is(err, errLoop) || errors.Is(err, errDenied) {
			return nil, dst, policy.Refused(err), errDenied
		}
	}
	return nil, netip.AddrPort{}, decision, s.classify(ctx, err)
}

// candidates decides for each address t resolved to and returns the allowed ones, in
// order, with the decision that counts: the first allowing one, or when none allows,
// the first refusal.
func (rs *ruleSet) candidates(t target, addrs []netip.Addr) (policy.Decision, []netip.AddrPort) {
	var (
		decision policy.Decision
		allowed  []netip.AddrPort
	)
	for i, a := range addrs {
		d := rs.decide(t, a)
		if d.Allow {
			if len(allowed) == 0 {
				decision = d
			}
			allowed = append(allowed, netip.AddrPortFrom(a, t.port))
		} else if i == 0 {
			decision = d
		}
	}
	return decision, allowed
}

// decide is the policy's decision for a dial to a, refused also when no reserved
// address of a's family exists to leave from.
func (rs *ruleSet) decide(t target, a netip.Addr) policy.Decision {
	d := rs.Policy.Decide(t.host, a)
	if d.Allow && !(&dialer.Dialer{Sources: rs.Sources}).Usable(a) {
		return policy.Refused(dialer.ErrNoSource)
	}
	return d
}

// source is the reserved address a dial to dst leaves from; invalid when the kernel
// chooses.
func (rs *ruleSet) source(dst netip.Addr) netip.Addr {
	src, _ := dialer.Source(rs.Sources, dst)
	return src
}

// classify maps a failed connection attempt to a timeout (504) or an unreachable
// upstream (502), and counts it.
func (s *Server) classify(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		s.Metrics.DialErrors.WithLabelValues("timeout").Inc()
		return fmt.Errorf("%w: %w", errTimeout, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		s.Metrics.DialErrors.WithLabelValues("refused").Inc()
	default:
		s.Metrics.DialErrors.WithLabelValues("other").Inc()
	}
	return fmt.Errorf("%w: %w", errUnreachable, err)
}

// isSelf reports a destination that is this proxy's own listening port on one of the
// host's addresses: a request looping back through the proxy.
func (s *Server) isSelf(dst netip.AddrPort) bool {
	if _, ok := s.listenPorts.Load(dst.Port()); !ok {
		return false
	}
	return dialer.IsLocal(dst.Addr())
}
