// Package link programs everything of an egress router attachment in the pod network
// namespace except NAT: the macvlan (net1) on the node's master link, the reserved
// addresses, the routing table and rules that send egress through net1, the sysctls
// forwarding needs, and the announcements that tell neighbours the reserved IP's MAC.
//
// It takes two values, which package plan computes from the configuration: Macvlan,
// the interface and its sysctls, and Reservation, what holding the reserved addresses
// takes (addresses, PolicyTable, rules, announcements).
package link

import (
	"net/netip"
)

// PolicyTable is the routing table egress takes: the reserved subnets and a default
// route via the gateway, on the attachment's interface. The pod netns is the router's
// own, so one fixed number cannot clash with another attachment of this plugin; it is
// far from the tables the kernel and tools use (253-255, 0-99).
const PolicyTable = 17746

// Macvlan is the attachment's interface and the sysctls it needs.
type Macvlan struct {
	Name   string // in the pod namespace: net1
	Master string // the master link's name in the caller's namespace
	Mode   string // macvlan mode: bridge, private, vepa, passthru
	MTU    int    // 0: the master's
	// IPv6 is whether a reserved address is IPv6; without one the interface gets no
	// IPv6 at all (see Tune).
	IPv6 bool
	// Forwarding lists the families (4, 6) the pod forwards (redirect mode).
	Forwarding []int
}

// Reservation is what holding the reserved addresses takes on the interface IfName:
// the addresses, PolicyTable's routes and the rules that lead into it, and the
// announcements.
type Reservation struct {
	IfName    string
	Addresses []netip.Prefix
	// Routes are PolicyTable's, on IfName.
	Routes []Route
	// RoutedSources are the addresses whose traffic PolicyTable routes: each gets a
	// rule "from <source> lookup PolicyTable" (the proxy modes, whose sockets bind it).
	RoutedSources []netip.Addr
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
