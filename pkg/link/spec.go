// Package link programs everything of an egress router attachment in the pod network
// namespace except NAT: the macvlan (net1) on the node's master link, the reserved
// addresses, the routing table and rules that send egress through net1, the sysctls
// forwarding needs, and the announcements that tell neighbours the reserved IP's MAC.
package link

import (
	"net/netip"
	"slices"

	"github.com/egress-router/egress-router/pkg/config"
)

// PolicyTable is the routing table egress takes: the reserved subnets and a default
// route via the gateway, on the attachment's interface. The pod netns is the router's
// own, so one fixed number cannot clash with another attachment of this plugin; it is
// far from the tables the kernel and tools use (253-255, 0-99).
const PolicyTable = 17746

// Spec is what one attachment programs, derived from the configuration by Plan.
type Spec struct {
	IfName    string
	Master    string // the master link's name in the caller's namespace
	Mode      string // macvlan mode: bridge, private, vepa, passthru
	MTU       int    // 0: the master's
	Addresses []netip.Prefix
	// Routes are PolicyTable's, on IfName.
	Routes []Route
	// Sources get a rule "from <source> lookup PolicyTable" (proxy modes).
	Sources []netip.Addr
	// Forwarding lists the families (4, 6) the pod forwards (redirect mode); each gets
	// the rules that send forwarded traffic into PolicyTable.
	Forwarding []int
}

// Route is one route of PolicyTable on the attachment's interface.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr // zero: the destination is on the link
	// OnLink marks a gateway outside every reserved subnet (a /32 reserved address):
	// the kernel must be told it is reachable on the link anyway.
	OnLink bool
}

// Plan derives the attachment's Spec from a validated configuration, with master the
// resolved master link (see Master).
//
// Egress leaves by PolicyTable in every mode, and the main table, with the pod's
// default route on eth0, stays as it was, so cluster DNS and Services still work. What
// is sent into the table differs. The proxy modes cannot list their destinations
// (names resolve at run time), but their sockets bind the reserved address, so a
// source rule sends everything from it there. Redirect mode forwards connections it
// DNATed, so the traffic it forwards goes there: one rule whatever the number of
// destination lines, where a host route per destination made a thousand-line ADD pay
// for hundreds of routes (see Spec.rules).
func Plan(c *config.Config, ifName, master string) Spec {
	s := Spec{IfName: ifName, Master: master, Mode: c.Interface.Mode, MTU: c.Interface.MTU, Addresses: c.IP.Addresses}
	for _, a := range c.IP.Addresses {
		if a.Bits() < a.Addr().BitLen() {
			s.addRoute(Route{Dst: a.Masked()})
		}
		if gw, ok := c.IP.Gateway(a.Addr()); ok {
			s.addRoute(Route{Dst: netip.PrefixFrom(gw, 0).Masked(), Via: gw, OnLink: !c.IP.OnLink(gw)})
		}
	}
	if c.Mode == config.Redirect {
		for _, dst := range c.IP.Redirect.Targets() {
			s.addForwarding(dst)
		}
		return s
	}
	for _, a := range c.IP.Addresses {
		s.Sources = append(s.Sources, a.Addr())
	}
	return s
}

// addRoute adds r once: two reserved addresses of a family share its gateway.
func (s *Spec) addRoute(r Route) {
	if !slices.Contains(s.Routes, r) {
		s.Routes = append(s.Routes, r)
	}
}

func (s *Spec) addForwarding(dst netip.Addr) {
	family := 6
	if dst.Is4() {
		family = 4
	}
	if !slices.Contains(s.Forwarding, family) {
		s.Forwarding = append(s.Forwarding, family)
	}
}
