package link

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Hold makes this pod the one that answers for the reserved addresses on an interface
// already up (an HA standby's net1): the addresses, then PolicyTable's routes and the
// rules into it. What is already held stays, so holding twice is harmless. The
// neighbours are not told here: AnnounceAll does that, and an agent repeats it. Call it
// in the pod namespace.
func Hold(r Reservation) error {
	if err := AddAddresses(r); err != nil {
		return err
	}
	return AddRoutes(r)
}

// Release gives the reserved addresses up: the addresses first, so that from the
// first step on this pod neither answers ARP for them nor sends from them, then the
// rules and PolicyTable's routes. Nothing held is fine. Call it in the pod namespace.
func Release(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", r.IfName, err)
	}
	var errs []error
	for _, a := range r.Addresses {
		err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipNet(a)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) { // not held: fine
			errs = append(errs, fmt.Errorf("remove address %s from %s: %w", a, r.IfName, err))
		}
	}
	errs = append(errs, RemoveRules())
	routes, err := policyRoutes(l)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range routes {
		if err := netlink.RouteDel(&routes[i]); err != nil {
			errs = append(errs, fmt.Errorf("remove route %s from table %d: %w", routes[i].Dst, PolicyTable, err))
		}
	}
	return errors.Join(errs...)
}

// Holds reports whether the interface holds any of the reserved addresses. Call it in
// the pod namespace.
func Holds(r Reservation) (bool, error) {
	held, err := heldAddresses(r)
	return len(held) > 0, err
}

// CheckReleased reports what of the Reservation the namespace still has: reserved
// addresses, PolicyTable routes on the interface, rules into PolicyTable. Call it in
// the pod namespace.
func CheckReleased(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("interface %s: %w", r.IfName, err)
	}
	var errs []error
	held, err := heldAddresses(r)
	if err != nil {
		return err
	}
	for _, a := range held {
		errs = append(errs, fmt.Errorf("%s: holds reserved address %s", r.IfName, a))
	}
	routes, err := policyRoutes(l)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, rt := range routes {
		errs = append(errs, fmt.Errorf("%s: has route %s in table %d", r.IfName, rt.Dst, PolicyTable))
	}
	rules, err := netlinksafe.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list rules: %w", err))...)
	}
	for _, rule := range rules {
		if rule.Table == PolicyTable {
			errs = append(errs, fmt.Errorf("rule %d into table %d is present", rule.Priority, PolicyTable))
		}
	}
	return errors.Join(errs...)
}

func heldAddresses(r Reservation) ([]netip.Prefix, error) {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", r.IfName, err)
	}
	live, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", r.IfName, err)
	}
	var held []netip.Prefix
	for _, a := range live {
		if p, ok := prefixOf(a.IPNet); ok && slices.ContainsFunc(r.Addresses, func(want netip.Prefix) bool { return want.Addr() == p.Addr() }) {
			held = append(held, p)
		}
	}
	return held, nil
}

// policyRoutes lists PolicyTable's routes on l, both families.
func policyRoutes(l netlink.Link) ([]netlink.Route, error) {
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: l.Attrs().Index, Table: PolicyTable},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of %s in table %d: %w", l.Attrs().Name, PolicyTable, err)
	}
	return routes, nil
}
