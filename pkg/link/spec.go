// Package link programs everything of an egress router attachment in the pod network
// namespace except NAT: the macvlan (net1) on the node's master link, the reserved
// addresses, the routes and source rules that send egress through net1, the sysctls
// forwarding needs, and the announcements that tell neighbours the reserved IP's MAC.
package link

import (
	"net/netip"
	"slices"

	"github.com/egress-router/egress-router/pkg/config"
)

// PolicyTable is the routing table the proxy modes' source rules point at. The pod
// netns is the router's own, so one fixed number cannot clash with another attachment
// of this plugin; it is far from the tables the kernel and tools use (253-255, 0-99).
const PolicyTable = 17746

// Spec is what one attachment programs, derived from the configuration by Plan.
type Spec struct {
	IfName    string
	Master    string // the master link's name in the caller's namespace
	Mode      string // macvlan mode: bridge, private, vepa, passthru
	MTU       int    // 0: the master's
	Addresses []netip.Prefix
	// Routes are added on IfName; those in PolicyTable serve the source rules.
	Routes []Route
	// Sources get a rule "from <source> lookup PolicyTable" (proxy modes).
	Sources []netip.Addr
	// Forwarding lists the families (4, 6) the pod must forward (redirect mode).
	Forwarding []int
}

// Route is one route on the attachment's interface.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr // zero: the destination is on the link
	// OnLink marks a gateway outside every reserved subnet (a /32 reserved address):
	// the kernel must be told it is reachable on the link anyway.
	OnLink bool
	Table  int // 0: the main table
}

// Plan derives the attachment's Spec from a validated configuration, with master the
// resolved master link (see Master).
//
// Redirect mode gets a host route via the gateway for each destination outside the
// reserved subnets: only the redirected flows leave through net1, and eth0 keeps the
// pod's default route, so cluster DNS and Services still work. The proxy modes cannot
// list their destinations (names resolve at run time), so their sockets bind the
// reserved address and a source rule sends everything from it through net1.
func Plan(c *config.Config, ifName, master string) Spec {
	s := Spec{IfName: ifName, Master: master, Mode: c.Interface.Mode, MTU: c.Interface.MTU, Addresses: c.IP.Addresses}
	if c.Mode == config.Redirect {
		for _, dst := range c.IP.Redirect.Targets() {
			s.addForwarding(dst)
			if c.IP.OnLink(dst) {
				continue // the reserved subnet's own route covers it
			}
			gw, _ := c.IP.Gateway(dst) // Load guarantees one for an off-link target
			r := Route{Dst: netip.PrefixFrom(dst, dst.BitLen()), Via: gw, OnLink: !c.IP.OnLink(gw)}
			if !slices.Contains(s.Routes, r) {
				s.Routes = append(s.Routes, r)
			}
		}
		return s
	}
	for _, a := range c.IP.Addresses {
		s.Sources = append(s.Sources, a.Addr())
		if a.Bits() < a.Addr().BitLen() {
			s.Routes = append(s.Routes, Route{Dst: a.Masked(), Table: PolicyTable})
		}
		if gw, ok := c.IP.Gateway(a.Addr()); ok {
			s.Routes = append(s.Routes, Route{Dst: netip.PrefixFrom(gw, 0).Masked(), Via: gw, OnLink: !c.IP.OnLink(gw), Table: PolicyTable})
		}
	}
	return s
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
