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

// CheckLink compares the pod namespace with m: the interface is a macvlan of the right
// mode on masterIndex (the master's index in the caller's namespace) with mac (when
// known), up, with m's forwarding. It returns every drift found, each naming what
// differs. Call it in the pod namespace.
func CheckLink(m Macvlan, masterIndex int, mac net.HardwareAddr) error {
	l, err := netlinksafe.LinkByName(m.Name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", m.Name, err)
	}
	var errs []error
	drift := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{m.Name}, args...)...))
	}
	mv, ok := l.(*netlink.Macvlan)
	if !ok {
		return fmt.Errorf("%s is a %s link, want macvlan", m.Name, l.Type())
	}
	if want, _ := macvlanMode(m.Mode); mv.Mode != want {
		drift("macvlan mode is %s, want %s", modeName(mv.Mode), m.Mode)
	}
	if l.Attrs().ParentIndex != masterIndex {
		drift("master is link index %d, want %s (index %d)", l.Attrs().ParentIndex, m.Master, masterIndex)
	}
	if len(mac) > 0 && !bytes.Equal(l.Attrs().HardwareAddr, mac) {
		drift("MAC is %s, want %s", l.Attrs().HardwareAddr, mac)
	}
	if m.MTU != 0 && l.Attrs().MTU != m.MTU {
		drift("MTU is %d, want %d", l.Attrs().MTU, m.MTU)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		drift("link is down")
	}
	if err := checkForwarding(m); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckHeld compares the pod namespace with r: the interface holds exactly the
// reserved addresses, with r's routes and rules. Call it in the pod namespace.
func CheckHeld(r Reservation) error {
	l, err := netlinksafe.LinkByName(r.IfName)
	if err != nil {
		return fmt.Errorf("interface %s: %w", r.IfName, err)
	}
	return errors.Join(checkAddresses(r, l), checkRoutes(r, l))
}

// checkAddresses reports reserved addresses missing from the link and global
// addresses on it that are not reserved ones (a changed address shows as both).
func checkAddresses(r Reservation, l netlink.Link) error {
	live, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", r.IfName, err)
	}
	var have []netip.Prefix
	for _, a := range live {
		if p, ok := prefixOf(a.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
			have = append(have, p)
		}
	}
	var errs []error
	for _, want := range r.Addresses {
		if !slices.Contains(have, want) {
			errs = append(errs, fmt.Errorf("%s: address %s is missing", r.IfName, want))
		}
	}
	for _, got := range have {
		if !slices.Contains(r.Addresses, got) {
			errs = append(errs, fmt.Errorf("%s: unexpected address %s", r.IfName, got))
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
