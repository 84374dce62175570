package main

import (
	"net"
	"net/netip"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/link"
)

// newResult reports the attachment: the interface with its sandbox and the addresses
// ADD added (plan.ResultAddresses) with their gateways. Its routes are in link.PolicyTable, behind rules,
// which a result cannot express, so it lists none. A chained prevResult is passed
// through with the attachment appended. It is built at the newest spec version;
// PrintResult converts it to the caller's.
func newResult(inv *invocation, podNS ns.NetNS, iface link.Interface, addresses []netip.Prefix) *current.Result {
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if inv.prev != nil {
		r = inv.prev
	}
	r.Interfaces = append(r.Interfaces, &current.Interface{Name: iface.Name, Mac: iface.MAC.String(), Sandbox: podNS.Path()})
	index := len(r.Interfaces) - 1
	for _, a := range addresses {
		ipc := &current.IPConfig{Interface: &index, Address: net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if gw, ok := inv.cfg.IP.Gateway(a.Addr()); ok {
			ipc.Gateway = gw.AsSlice()
		}
		r.IPs = append(r.IPs, ipc)
	}
	return r
}
