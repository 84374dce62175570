package link

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	// ErrNoMaster: the master link does not exist in the caller's namespace.
	ErrNoMaster = errors.New("master link not found")
	// ErrExists: the pod namespace already has an interface of the requested name.
	ErrExists = errors.New("interface already exists")
)

// Interface is the created link as the CNI result reports it.
type Interface struct {
	Name string
	MAC  net.HardwareAddr
}

// Master returns the master link: name, or the link of the caller's default route
// (IPv4 first) when name is "".
func Master(name string) (netlink.Link, error) {
	if name != "" {
		l, err := netlinksafe.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrNoMaster, name, err)
		}
		return l, nil
	}
	links, err := DefaultRouteLinks()
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("%w: interfaceArgs.master is not set and there is no default route to take it from", ErrNoMaster)
	}
	return links[0], nil
}

// DefaultRouteLinks returns the links of the caller's default routes, IPv4's first,
// each once.
func DefaultRouteLinks() ([]netlink.Link, error) {
	routes, err := netlinksafe.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return defaultRouteLinks(routes)
}

// defaultRouteLinks returns the links of the main table's default routes among
// routes, IPv4's first, each once.
func defaultRouteLinks(routes []netlink.Route) ([]netlink.Link, error) {
	var links []netlink.Link
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		for _, r := range routes {
			if r.Family != family || r.Table != unix.RT_TABLE_MAIN || !isDefault(r.Dst) || r.LinkIndex <= 0 ||
				slices.ContainsFunc(links, func(l netlink.Link) bool { return l.Attrs().Index == r.LinkIndex }) {
				continue
			}
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("%w: default route's link %d: %w", ErrNoMaster, r.LinkIndex, err)
			}
			links = append(links, l)
		}
	}
	return links, nil
}

// Create makes the macvlan straight into podNS under a temporary name and renames it
// to m.Name there. Creating it under its final name would fail on a clash with a link
// of that name in the caller's namespace (the kernel checks the name where the link is
// born); an existing m.Name in the pod is reported as ErrExists. Call it in the
// caller's namespace, where the master lives.
func Create(podNS ns.NetNS, m Macvlan, master netlink.Link) (Interface, error) {
	mode, err := macvlanMode(m.Mode)
	if err != nil {
		return Interface{}, err
	}
	err = podNS.Do(func(ns.NetNS) error {
		if _, err := netlinksafe.LinkByName(m.Name); err == nil {
			return fmt.Errorf("%w: %q in %s", ErrExists, m.Name, podNS.Path())
		}
		return nil
	})
	if err != nil {
		return Interface{}, err
	}
	tmp, err := temporaryName()
	if err != nil {
		return Interface{}, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = tmp
	attrs.MTU = m.MTU
	attrs.ParentIndex = master.Attrs().Index
	attrs.Namespace = netlink.NsFd(int(podNS.Fd()))
	if err := netlink.LinkAdd(&netlink.Macvlan{LinkAttrs: attrs, Mode: mode}); err != nil {
		return Interface{}, fmt.Errorf("create macvlan on %s: %w", master.Attrs().Name, err)
	}
	var created Interface
	err = podNS.Do(func(ns.NetNS) error {
		l, err := netlinksafe.LinkByName(tmp)
		if err != nil {
			return fmt.Errorf("find new macvlan %s: %w", tmp, err)
		}
		if err := netlink.LinkSetName(l, m.Name); err != nil {
			// Lost a race with another creator of IfName: leave nothing behind.
			_ = netlink.LinkDel(l)
			return fmt.Errorf("rename macvlan %s to %s: %w", tmp, m.Name, err)
		}
		created = Interface{Name: m.Name, MAC: l.Attrs().HardwareAddr}
		return nil
	})
	return created, err
}

// Delete removes the attachment's interface and, with it, its addresses and routes.
// A missing link is not an error. Call it in the pod namespace.
func Delete(ifName string) error {
	l, err := netlinksafe.LinkByName(ifName)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("find %s: %w", ifName, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", ifName, err)
	}
	return nil
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}

func temporaryName() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("temporary link name: %w", err)
	}
	return "egr" + hex.EncodeToString(b), nil
}

var macvlanModes = map[string]netlink.MacvlanMode{
	"bridge":   netlink.MACVLAN_MODE_BRIDGE,
	"private":  netlink.MACVLAN_MODE_PRIVATE,
	"vepa":     netlink.MACVLAN_MODE_VEPA,
	"passthru": netlink.MACVLAN_MODE_PASSTHRU,
}

func macvlanMode(name string) (netlink.MacvlanMode, error) {
	if name == "" {
		return netlink.MACVLAN_MODE_BRIDGE, nil
	}
	m, ok := macvlanModes[name]
	if !ok {
		return 0, fmt.Errorf("unknown macvlan mode %q", name)
	}
	return m, nil
}
