package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// AddRoutes adds PolicyTable's routes on the interface and the rules that lead into
// it. Rules outlive a deleted link, so any left by an older copy of the attachment are
// replaced, not duplicated. Call it in the pod namespace, with the link up.
func AddRoutes(res Reservation) error {
	l, err := netlinksafe.LinkByName(res.IfName)
	if err != nil {
		return fmt.Errorf("find %s: %w", res.IfName, err)
	}
	for _, r := range res.Routes {
		if err := netlink.RouteReplace(netlinkRoute(l, r)); err != nil {
			return fmt.Errorf("add route %s: %w", r, err)
		}
	}
	if err := RemoveRules(); err != nil {
		return err
	}
	for _, r := range res.rules() {
		if err := netlink.RuleAdd(r.netlink()); err != nil {
			// The step's undo runs only for completed steps: take back the rules
			// added so far here.
			return errors.Join(fmt.Errorf("add rule %s: %w", r, err), RemoveRules())
		}
	}
	return nil
}

// RemoveRules deletes the attachment's rules; none is fine. They are found by what
// they are, not from a Reservation, so a DEL after the configuration changed still finds
// them: every rule into PolicyTable (the number is this plugin's), and redirect mode's
// rule for the pod's own traffic. Routes need no removal: they go with the link. The
// rules and the table are the namespace's: a pod has one egress-router attachment.
func RemoveRules() error {
	live, err := netlinksafe.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	for i, r := range live {
		if r.Table != PolicyTable && !localRule(r.Family).matches(r) {
			continue
		}
		if err := netlink.RuleDel(&live[i]); err != nil {
			return fmt.Errorf("delete rule %d: lookup %d: %w", r.Priority, r.Table, err)
		}
	}
	return nil
}

// Rule priorities: just ahead of the main table's rule (32766), where the kernel puts
// a rule added without one, so rules other plugins added before still come first.
// Redirect mode sends the pod's own traffic past its forwarding rule first. Fixed
// numbers let CHECK find the rules and keep their order, which the kernel's default
// (one below the first after the local rule) would reverse.
const (
	localPriority  = 32764
	policyPriority = 32765
	mainPriority   = 32766 // the kernel's rule "from all lookup main"
)

// rule is one policy routing rule of the attachment, in the terms of ip-rule(8).
type rule struct {
	family   int // netlink.FAMILY_V4 or FAMILY_V6
	priority int
	invert   bool       // "not": the selector below, negated
	src      netip.Addr // "from src" when valid
	iif      string     // "iif iif" when set
	table    int        // "lookup table", unless goto is set
	goTo     int        // "goto goTo": go on at that priority
}

// rules are the rules the Reservation needs. Proxy modes: "from <reserved address> lookup
// PolicyTable", since their sockets bind it. Redirect mode, per family it forwards:
//
//	32764: iif lo goto 32766
//	32765: not iif net1 lookup 17746
//
// so whatever arrives from the cluster side to be forwarded (only DNATed connections
// get past the forward filter) leaves via the gateway on net1, in one rule however many
// destination lines there are. The pod's own traffic, and the reverse-path check of
// what arrives on eth0 (a lookup with iif lo), skip to the main table's rule and are
// routed as without these rules: a "lookup main" instead would fall through to 17746
// when main has no route (an IPv6 reserved address in an IPv4 cluster), and send the
// pod's own traffic out from the reserved address.
func (res Reservation) rules() []rule {
	var rules []rule
	for _, src := range res.RoutedSources {
		rules = append(rules, rule{family: family(src), priority: policyPriority, src: src, table: PolicyTable})
	}
	for _, f := range res.Forwarding {
		nf := netlink.FAMILY_V4
		if f == 6 {
			nf = netlink.FAMILY_V6
		}
		rules = append(rules, localRule(nf), rule{family: nf, priority: policyPriority, invert: true, iif: res.IfName, table: PolicyTable})
	}
	return rules
}

func localRule(family int) rule {
	return rule{family: family, priority: localPriority, iif: "lo", goTo: mainPriority}
}

func (r rule) familyName() string {
	if r.family == netlink.FAMILY_V6 {
		return "IPv6"
	}
	return "IPv4"
}

func (r rule) netlink() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family, nr.Priority, nr.Invert, nr.IifName, nr.Table = r.family, r.priority, r.invert, r.iif, r.table
	if r.goTo != 0 {
		nr.Goto = r.goTo
	}
	if r.src.IsValid() {
		nr.Src = hostNet(r.src)
	}
	return nr
}

// matches reports whether live is r, as the kernel lists it.
func (r rule) matches(live netlink.Rule) bool {
	var src netip.Addr
	if live.Src != nil {
		src, _ = netip.AddrFromSlice(live.Src.IP)
	}
	goTo := max(live.Goto, 0)
	return live.Family == r.family && live.Priority == r.priority && live.Invert == r.invert &&
		live.IifName == r.iif && live.Table == r.table && goTo == r.goTo && src.Unmap() == r.src
}

// String writes r as `ip rule` shows it.
func (r rule) String() string {
	s := strconv.Itoa(r.priority) + ":"
	if r.invert {
		s += " not"
	}
	if r.src.IsValid() {
		s += " from " + r.src.String()
	}
	if r.iif != "" {
		s += " iif " + r.iif
	}
	if r.goTo != 0 {
		return s + " goto " + strconv.Itoa(r.goTo)
	}
	return s + " lookup " + strconv.Itoa(r.table)
}

func netlinkRoute(l netlink.Link, r Route) *netlink.Route {
	nr := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(r.Dst), Table: PolicyTable}
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
	return s + " table " + strconv.Itoa(PolicyTable)
}

// checkRoutes reports routes and rules of the Reservation missing from the namespace.
func checkRoutes(res Reservation, l netlink.Link) error {
	var errs []error
	live := map[int][]netlink.Route{} // by family, listed once each
	for _, r := range res.Routes {
		f := family(r.Dst.Addr())
		found, listed := live[f]
		if !listed {
			var err error
			found, err = netlinksafe.RouteListFiltered(f, &netlink.Route{LinkIndex: l.Attrs().Index, Table: PolicyTable},
				netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
			if err != nil {
				errs = append(errs, fmt.Errorf("list routes on %s: %w", res.IfName, err))
				continue
			}
			live[f] = found
		}
		if !slices.ContainsFunc(found, func(live netlink.Route) bool { return sameRoute(live, r) }) {
			errs = append(errs, fmt.Errorf("route %s dev %s is missing", r, res.IfName))
		}
	}
	rules, err := netlinksafe.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list rules: %w", err))...)
	}
	for _, want := range res.rules() {
		if !slices.ContainsFunc(rules, want.matches) {
			errs = append(errs, fmt.Errorf("%s rule %s is missing", want.familyName(), want))
		}
	}
	return errors.Join(errs...)
}

func sameRoute(live netlink.Route, want Route) bool {
	dst := netip.PrefixFrom(want.Dst.Addr(), 0).Masked() // the kernel's default route may come back without a Dst
	if p, ok := prefixOf(live.Dst); ok {
		dst = p
	}
	gw, _ := netip.AddrFromSlice(live.Gw)
	return dst == want.Dst && gw.Unmap() == want.Via
}
