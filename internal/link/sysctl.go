package link

import (
	"errors"
	"fmt"

	"github.com/containernetworking/plugins/pkg/utils/sysctl"
)

// Tune sets the pod namespace's sysctls the attachment needs and returns a function
// that puts the namespace-wide ones back (for a failed ADD). Call it in the pod
// namespace, before the link is up.
//
//   - rp_filter loose on the interface: replies to the reserved address come back on
//     net1 from destinations the main table routes via eth0 (only the rules send
//     egress to PolicyTable); strict reverse-path filtering would drop them. The
//     setting goes with the link.
//   - arp_notify on the interface: the kernel announces the IPv4 addresses when the
//     link comes up (see Announce).
//   - arp_ignore 1 and arp_announce 2 on the interface: it answers ARP only for the
//     addresses it holds, and asks with one of them. By default Linux answers for any
//     address of the namespace on any link, so hosts on the node network would learn
//     net1's MAC for the pod's cluster address, and a request sent on net1 could carry
//     that address as its source.
//   - accept_ra and autoconf off on the interface: a router advertisement on the node
//     network would otherwise give the pod a second IPv6 default route, via net1, and
//     take cluster traffic away from eth0.
//   - IPv6 off on the interface when no reserved address is IPv6: the link-local
//     address it would get when it comes up lets hosts on the node network open
//     connections to the pod over IPv6, which the NAT backend's input guard, written
//     for the reserved addresses' families, does not cover.
//   - forwarding on for the families redirect mode forwards; the NAT backend's
//     forward filter keeps the pod from being an open router.
func Tune(m Macvlan) (restore func(), err error) {
	settings := []struct{ key, value string }{
		{"net/ipv4/conf/" + m.Name + "/rp_filter", "2"},
		{"net/ipv4/conf/" + m.Name + "/arp_notify", "1"},
		{"net/ipv4/conf/" + m.Name + "/arp_ignore", "1"},
		{"net/ipv4/conf/" + m.Name + "/arp_announce", "2"},
		{"net/ipv6/conf/" + m.Name + "/accept_ra", "0"},
		{"net/ipv6/conf/" + m.Name + "/autoconf", "0"},
	}
	if !m.IPv6 {
		settings = append(settings, struct{ key, value string }{"net/ipv6/conf/" + m.Name + "/disable_ipv6", "1"})
	}
	for _, f := range m.Forwarding {
		settings = append(settings, struct{ key, value string }{forwardingKey(f), "1"})
	}
	var undo []func()
	restore = func() {
		for _, u := range undo {
			u()
		}
	}
	for _, set := range settings {
		old, err := sysctl.Sysctl(set.key)
		if err != nil {
			restore()
			return func() {}, fmt.Errorf("read sysctl %s: %w", set.key, err)
		}
		if _, err := sysctl.Sysctl(set.key, set.value); err != nil {
			restore()
			return func() {}, fmt.Errorf("set sysctl %s=%s: %w", set.key, set.value, err)
		}
		undo = append(undo, func() { _, _ = sysctl.Sysctl(set.key, old) })
	}
	return restore, nil
}

func forwardingKey(family int) string {
	if family == 4 {
		return "net/ipv4/ip_forward"
	}
	return "net/ipv6/conf/all/forwarding"
}

// checkForwarding reports a forwarding sysctl the attachment needs that is off.
func checkForwarding(m Macvlan) error {
	var errs []error
	for _, f := range m.Forwarding {
		v, err := sysctl.Sysctl(forwardingKey(f))
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", forwardingKey(f), err))
		} else if v != "1" {
			errs = append(errs, fmt.Errorf("sysctl %s is %s, want 1", forwardingKey(f), v))
		}
	}
	return errors.Join(errs...)
}
