package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddRoutes adds the Spec's routes on the interface and its source rules. Rules
// outlive a deleted link, so any left by an older copy of the attachment are replaced,
// not duplicated. Call it in the pod namespace, with the link up.
func AddRoutes(s Spec) error {
	l, err := netlinksafe.LinkByName(s.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", s.IfName, err)
	}
	// One socket for all the routes: the package-level calls open and close a netlink
	// socket per request, which a thousand-line redirect table would pay per route.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	defer h.Close()
	for _, r := range s.Routes {
		if err := h.RouteReplace(netlinkRoute(l, r)); err != nil {
			return fmt.Errorf("add route %s: %w", r, err)
		}
	}
	if err := RemoveRules(s); err != nil {
		return err
	}
	for _, src := range s.Sources {
		if err := netlink.RuleAdd(netlinkRule(src)); err != nil {
			return fmt.Errorf("add rule from %s lookup %d: %w", src, PolicyTable, err)
		}
	}
	return nil
}

// RemoveRules deletes every rule "from <reserved address> lookup PolicyTable"; none is
// fine. It covers every reserved address, not only the Spec's Sources, so a DEL after
// the mode changed still finds them. Routes need no removal: they go with the link.
func RemoveRules(s Spec) error {
	for _, a := range s.Addresses {
		src := a.Addr()
		rules, err := sourceRules(src)
		if err != nil {
			return err
		}
		for i := range rules {
			if err := netlink.RuleDel(&rules[i]); err != nil {
				return fmt.Errorf("delete rule from %s lookup %d: %w", src, PolicyTable, err)
			}
		}
	}
	return nil
}

func sourceRules(src netip.Addr) ([]netlink.Rule, error) {
	filter := netlinkRule(src)
	rules, err := netlinksafe.RuleListFiltered(family(src), filter, netlink.RT_FILTER_SRC|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list rules from %s: %w", src, err)
	}
	return rules, nil
}

func netlinkRule(src netip.Addr) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family(src)
	r.Src = hostNet(src)
	r.Table = PolicyTable
	return r
}

func netlinkRoute(l netlink.Link, r Route) *netlink.Route {
	nr := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(r.Dst), Table: r.Table}
	if r.Via.IsValid() {
		nr.Gw = net.IP(r.Via.AsSlice())
		if r.OnLink {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// checkRoutes reports routes and rules of the Spec missing from the namespace. The
// interface's routes are listed once per family and table, not once per route: a
// thousand-line redirect table has hundreds of host routes.
func checkRoutes(s Spec, l netlink.Link) error {
	type listing struct{ family, table int }
	live := map[listing][]netlink.Route{}
	var errs []error
	for _, r := range s.Routes {
		key := listing{family(r.Dst.Addr()), r.Table}
		if key.table == 0 {
			key.table = unix.RT_TABLE_MAIN
		}
		found, listed := live[key]
		if !listed {
			var err error
			found, err = netlinksafe.RouteListFiltered(key.family, &netlink.Route{LinkIndex: l.Attrs().Index, Table: key.table},
				netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
			if err != nil {
				errs = append(errs, fmt.Errorf("list routes on %s: %w", s.IfName, err))
				continue
			}
			live[key] = found
		}
		if !slices.ContainsFunc(found, func(live netlink.Route) bool { return sameRoute(live, r) }) {
			errs = append(errs, fmt.Errorf("route %s dev %s is missing", r, s.IfName))
		}
	}
	for _, src := range s.Sources {
		rules, err := sourceRules(src)
		if err != nil {
			errs = append(errs, err)
		} else if len(rules) == 0 {
			errs = append(errs, fmt.Errorf("rule from %s lookup %d is missing", src, PolicyTable))
		}
	}
	return errors.Join(errs...)
}

func sameRoute(live netlink.Route, want Route) bool {
	dst := netip.PrefixFrom(want.Dst.Addr(), 0).Masked() // the kernel's default route may come back without a Dst
	if live.Dst != nil {
		ones, _ := live.Dst.Mask.Size()
		a, _ := netip.AddrFromSlice(live.Dst.IP)
		dst = netip.PrefixFrom(a.Unmap(), ones)
	}
	gw, _ := netip.AddrFromSlice(live.Gw)
	return dst == want.Dst && gw.Unmap() == want.Via
}
