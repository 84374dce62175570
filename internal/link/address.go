package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddAddresses assigns the reserved addresses to the interface; one already there
// stays. Call it in the pod namespace.
//
// IPv6 addresses skip duplicate address detection (IFA_F_NODAD). With DAD the address
// stays tentative for about a second after ADD returns: the proxies could not bind it
// and SNAT could not use it. The address is reserved by the administrator for this
// router, so a duplicate is a configuration error DAD cannot fix; worse, during a
// failover the old pod may still answer for it, DAD would then mark the new copy
// failed, and the router would stay dead instead of taking over. Announce tells the
// neighbours instead.
func AddAddresses(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", r.IfName, err)
	}
	for _, a := range r.Addresses {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a, r.IfName, err)
		}
	}
	return nil
}

// Up brings the interface name up. Call it in the pod namespace.
func Up(name string) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// prefixOf is ipNet's inverse, for what netlink reports.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func hostNet(a netip.Addr) *net.IPNet {
	return ipNet(netip.PrefixFrom(a, a.BitLen()))
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
