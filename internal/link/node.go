package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NodeAddresses returns every address that a link of the caller's namespace holds,
// with its subnet: run in the node's namespace, the addresses a reserved address must
// never take over.
func NodeAddresses() ([]netip.Prefix, error) {
	addrs, err := netlinksafe.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Routing is what the node's routes tell its policy checks.
type Routing struct {
	// DefaultRouteLinks are the names of the main table's default routes' links, IPv4's
	// first: what a configuration without a master takes.
	DefaultRouteLinks []string
	// Gateways are the next hops of every route, in every table, multipath routes'
	// included.
	Gateways []netip.Addr
}

// ReadRouting reads Routing from one dump of every routing table of the caller's
// namespace: it runs on every ADD, CHECK and STATUS.
func ReadRouting() (Routing, error) {
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return Routing{}, fmt.Errorf("list routes: %w", err)
	}
	var rt Routing
	links, err := defaultRouteLinks(routes)
	if err != nil {
		return Routing{}, err
	}
	for _, l := range links {
		rt.DefaultRouteLinks = append(rt.DefaultRouteLinks, l.Attrs().Name)
	}
	add := func(gw net.IP) {
		if a, ok := netip.AddrFromSlice(gw); ok {
			rt.Gateways = append(rt.Gateways, a.Unmap())
		}
	}
	for _, r := range routes {
		add(r.Gw)
		for _, hop := range r.MultiPath {
			add(hop.Gw)
		}
	}
	return rt, nil
}
