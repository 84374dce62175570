package link

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// Check compares the pod namespace with the Spec: the interface is a macvlan of the
// right mode on masterIndex (the master's index in the caller's namespace) with mac
// (when known), up, holding exactly the reserved addresses, with the Spec's routes,
// rules and forwarding. It returns every drift found, each naming what differs. Call
// it in the pod namespace.
func Check(s Spec, masterIndex int, mac net.HardwareAddr) error {
	l, err := netlinksafe.LinkByName(s.IfName)
	if err != nil {
		return fmt.Errorf("interface %s: %w", s.IfName, err)
	}
	var errs []error
	drift := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{s.IfName}, args...)...))
	}
	mv, ok := l.(*netlink.Macvlan)
	if !ok {
		return fmt.Errorf("%s is a %s link, want macvlan", s.IfName, l.Type())
	}
	if want, _ := macvlanMode(s.Mode); mv.Mode != want {
		drift("macvlan mode is %s, want %s", modeName(mv.Mode), s.Mode)
	}
	if l.Attrs().ParentIndex != masterIndex {
		drift("master is link index %d, want %s (index %d)", l.Attrs().ParentIndex, s.Master, masterIndex)
	}
	if len(mac) > 0 && !bytes.Equal(l.Attrs().HardwareAddr, mac) {
		drift("MAC is %s, want %s", l.Attrs().HardwareAddr, mac)
	}
	if s.MTU != 0 && l.Attrs().MTU != s.MTU {
		drift("MTU is %d, want %d", l.Attrs().MTU, s.MTU)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		drift("link is down")
	}
	if err := checkAddresses(s, l); err != nil {
		errs = append(errs, err)
	}
	if err := checkRoutes(s, l); err != nil {
		errs = append(errs, err)
	}
	if err := checkForwarding(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkAddresses reports reserved addresses missing from the link and global
// addresses on it that are not reserved ones (a changed address shows as both).
func checkAddresses(s Spec, l netlink.Link) error {
	live, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", s.IfName, err)
	}
	var have []netip.Prefix
	for _, a := range live {
		if p, ok := prefixOf(a.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
			have = append(have, p)
		}
	}
	var errs []error
	for _, want := range s.Addresses {
		if !slices.Contains(have, want) {
			errs = append(errs, fmt.Errorf("%s: address %s is missing", s.IfName, want))
		}
	}
	for _, got := range have {
		if !slices.Contains(s.Addresses, got) {
			errs = append(errs, fmt.Errorf("%s: unexpected address %s", s.IfName, got))
		}
	}
	return errors.Join(errs...)
}

func modeName(m netlink.MacvlanMode) string {
	for name, mode := range macvlanModes {
		if mode == m {
			return name
		}
	}
	return fmt.Sprintf("mode %d", m)
}
