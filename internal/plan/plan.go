// Package plan computes what one egress router attachment programs in the pod network
// namespace, from the validated configuration and the one fact read from the node, the
// master link: the one way from configuration to kernel. The kernel packages (link,
// nat) take the plan's parts and never see the configuration.
//
// The parts apply and are removed on their own, because their lives differ:
//
//   - Link, the macvlan and its sysctls, lives as long as the attachment.
//   - Netfilter, the input guard and redirect mode's NAT and forward filter, too: it
//     matches the interface by name and the reserved sources as SNAT targets, so it
//     can be in place before the addresses are.
//   - Activation, the reserved addresses, PolicyTable with the rules into it, and the
//     announcements, is what makes this pod the one that answers for the reserved IP.
//
// The CNI plugin applies all three (ADD), removes them (DEL) and compares them with
// the live namespace (CHECK). In HA mode (config.HA) egress-router-agent moves the
// reserved IP between router pods: ADD applies Link and Netfilter only, which stay
// for the pod's life, and the agent adds Activation (link.Hold, link.AnnounceHeld) or
// removes it (link.Release) as it gains or loses its lease. (IPv4 is announced by the
// kernel when the link comes up holding the addresses, see link.Tune: an agent adding
// them to a link already up announces them itself.)
package plan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
)

// Plan is everything one attachment programs.
type Plan struct {
	Link       link.Macvlan
	Activation link.Reservation
	Netfilter  Netfilter
	// HA: Activation is the agent's. ADD leaves it out, and CHECK accepts it held
	// exactly as planned (the active pod) or released entirely (a standby).
	HA bool
}

// New plans the attachment a of the validated configuration c, on the master link
// named master (resolved with link.Master), with backend the NAT backend that works
// here (nat.New).
//
// Egress leaves by link.PolicyTable in every mode, and the main table, with the pod's
// default route on eth0, stays as it was, so cluster DNS and Services still work. What
// is sent into the table differs. The proxy modes cannot list their destinations
// (names resolve at run time), but their sockets bind the reserved address, so a
// source rule sends everything from it there. Redirect mode forwards connections it
// DNATed, so the traffic it forwards goes there: one rule whatever the number of
// destination lines, where a host route per destination made a thousand-line ADD pay
// for hundreds of routes.
func New(c *config.Config, a nat.Attachment, master string, backend nat.Backend) Plan {
	p := Plan{
		HA: c.HA.Enabled,
		Link: link.Macvlan{Name: a.IfName, Master: master, Mode: c.Interface.Mode, MTU: c.Interface.MTU,
			IPv6: slices.ContainsFunc(c.IP.Addresses, func(p netip.Prefix) bool { return p.Addr().Is6() })},
		Activation: link.Reservation{IfName: a.IfName, Addresses: c.IP.Addresses},
		Netfilter: Netfilter{Backend: backend, Attachment: a,
			Ruleset: nat.Ruleset{Egress: a.IfName, SourcePerFamily: c.IP.Sources().PerFamily()}},
	}
	for _, addr := range c.IP.Addresses {
		if addr.Bits() < addr.Addr().BitLen() {
			p.addRoute(link.Route{Dst: addr.Masked()})
		}
		if gw, ok := c.IP.Gateway(addr.Addr()); ok {
			p.addRoute(link.Route{Dst: netip.PrefixFrom(gw, 0).Masked(), Via: gw, OnLink: !c.IP.OnLink(gw)})
		}
	}
	if c.Mode != config.Redirect {
		// ip.destinations is accepted but unused here: the proxies carry the lists.
		p.Activation.RoutedSources = c.IP.Sources()
		p.Netfilter.ShortTimeWait = true
		return p
	}
	p.Netfilter.Ruleset.Redirect = c.IP.Redirect
	for _, dst := range c.IP.Redirect.Targets() {
		family := 6
		if dst.Is4() {
			family = 4
		}
		if !slices.Contains(p.Link.Forwarding, family) {
			p.Link.Forwarding = append(p.Link.Forwarding, family)
		}
	}
	p.Activation.Forwarding = p.Link.Forwarding
	return p
}

// addRoute adds r once: two reserved addresses of a family share its gateway.
func (p *Plan) addRoute(r link.Route) {
	if !slices.Contains(p.Activation.Routes, r) {
		p.Activation.Routes = append(p.Activation.Routes, r)
	}
}

// Check compares the pod namespace with the plan and names every drift; masterIndex is
// the master's index in the caller's namespace, mac the interface's as ADD reported
// it. Call it in the pod namespace.
func (p Plan) Check(masterIndex int, mac net.HardwareAddr) error {
	return errors.Join(link.CheckLink(p.Link, masterIndex, mac), p.checkActivation(), p.Netfilter.Check())
}

// checkActivation: without HA, Activation is held as planned. With HA, either held as
// planned or released entirely; anything between (an address without its rules, a
// rule left after the address went) is drift, reported against both roles.
func (p Plan) checkActivation() error {
	held := link.CheckHeld(p.Activation)
	if !p.HA || held == nil {
		return held
	}
	released := link.CheckReleased(p.Activation)
	if released == nil {
		return nil
	}
	return fmt.Errorf("HA: the reserved addresses are neither held nor released: as the active pod: %w; as a standby: %w", held, released)
}

// ResultAddresses are the addresses ADD reports in the CNI result: those it added,
// none in HA mode.
func (p Plan) ResultAddresses() []netip.Prefix {
	if p.HA {
		return nil
	}
	return p.Activation.Addresses
}

// Netfilter is the attachment's packet filter state: the input guard in every mode,
// and redirect mode's NAT and forward filter, written by Backend; in the proxy modes
// also the guard's shorter conntrack TIME_WAIT.
type Netfilter struct {
	Backend    nat.Backend
	Attachment nat.Attachment
	// Ruleset is what Apply writes and Check expects; Remove needs none, as it finds
	// the state by the attachment's tag.
	Ruleset nat.Ruleset
	// ShortTimeWait: ADD shortens conntrack's TIME_WAIT in the pod (the proxy modes,
	// see nat.ShortenTimeWait). Not in redirect mode: there an entry also holds the
	// SNAT mapping, and while it lives another client's connection from the same
	// port to the same destination is given another port, not the tuple the
	// destination may still hold in TIME_WAIT (60 s on Linux, 240 s elsewhere).
	ShortTimeWait bool
}

// Apply writes the ruleset, replacing what the attachment had.
func (n Netfilter) Apply() error {
	if err := n.Backend.Apply(n.Attachment, n.Ruleset); err != nil {
		return fmt.Errorf("%s: %w", n.Backend.Name(), err)
	}
	return nil
}

// ShortenTimeWait applies ShortTimeWait, returning the undo for a failed ADD.
func (n Netfilter) ShortenTimeWait() (restore func(), err error) {
	if !n.ShortTimeWait {
		return func() {}, nil
	}
	return nat.ShortenTimeWait()
}

// Check names what differs between the live state and the ruleset.
func (n Netfilter) Check() error {
	if err := n.Backend.Check(n.Attachment, n.Ruleset); err != nil {
		return fmt.Errorf("%s rules: %w", n.Backend.Name(), err)
	}
	return nil
}

// Remove deletes the attachment's state; none is fine.
func (n Netfilter) Remove() error {
	if err := n.Backend.Remove(n.Attachment); err != nil {
		return fmt.Errorf("%s: remove rules: %w", n.Backend.Name(), err)
	}
	return nil
}
