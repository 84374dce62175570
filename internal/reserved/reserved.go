// Package reserved says which reserved address egress traffic leaves from: the first
// reserved address of the destination's family. The plugin (SNAT, the input guard)
// and both proxies (the address their sockets bind) ask it, so they never disagree.
package reserved

import "net/netip"

// Sources are the reserved addresses without their subnets, in configuration order.
// The zero value has none: a proxy then leaves the choice to the kernel.
type Sources []netip.Addr

// SourcesOf turns the configured reserved addresses (ip.addresses) into Sources.
func SourcesOf(addresses []netip.Prefix) Sources {
	out := make(Sources, len(addresses))
	for i, p := range addresses {
		out[i] = p.Addr()
	}
	return out
}

// For returns the source of dst's family, and whether there is one.
func (s Sources) For(dst netip.Addr) (netip.Addr, bool) {
	for _, a := range s {
		if a.Is4() == dst.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// PerFamily returns the source of each family that has one, IPv4's first: the
// addresses traffic actually leaves from, where a family may list several.
func (s Sources) PerFamily() Sources {
	var out Sources
	for _, family := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		if src, ok := s.For(family); ok {
			out = append(out, src)
		}
	}
	return out
}
