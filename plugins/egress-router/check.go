package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
)

// cmdCheck compares the pod namespace with prevResult and the configuration and fails
// naming every drift: link type, mode, master, MAC, addresses, routes, rules, and the
// netfilter state (input guard, NAT).
func cmdCheck(args *skel.CmdArgs) error {
	inv, err := load(args)
	if err != nil {
		return err
	}
	defer inv.close()
	if inv.prev == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs the prevResult of ADD", "")
	}
	podNS, err := openPodNS(args)
	if err != nil {
		return err
	}
	defer podNS.Close()
	master, p, err := inv.plan(args)
	if err != nil {
		return asCNIError("egress-router CHECK", err)
	}
	mac, err := checkPrevResult(inv.prev, p.Activation.IfName, p.ResultAddresses(), podNS.Path())
	if err == nil {
		err = podNS.Do(func(ns.NetNS) error { return p.Check(master.Attrs().Index, mac) })
	}
	if err != nil {
		inv.log.Warn("CHECK found drift", "error", err)
		return types.NewError(errDrift, "egress-router CHECK: the attachment drifted", err.Error())
	}
	return nil
}

// checkPrevResult finds the interface ifName in prevResult and checks that the
// addresses ADD reported are those the configuration has it report (want). It returns
// the MAC ADD reported, for comparison with the live link.
func checkPrevResult(prev *current.Result, ifName string, want []netip.Prefix, sandbox string) (net.HardwareAddr, error) {
	index := slices.IndexFunc(prev.Interfaces, func(i *current.Interface) bool { return i.Name == ifName && i.Sandbox == sandbox })
	if index < 0 {
		return nil, fmt.Errorf("prevResult has no interface %s in %s", ifName, sandbox)
	}
	mac, err := net.ParseMAC(prev.Interfaces[index].Mac)
	if err != nil {
		return nil, fmt.Errorf("prevResult: MAC of %s: %w", ifName, err)
	}
	var reported []netip.Prefix
	for _, ipc := range prev.IPs {
		if ipc.Interface != nil && *ipc.Interface == index {
			a, _ := netip.AddrFromSlice(ipc.Address.IP)
			ones, _ := ipc.Address.Mask.Size()
			reported = append(reported, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	var errs []error
	for _, p := range reported {
		if !slices.Contains(want, p) {
			errs = append(errs, fmt.Errorf("prevResult reports address %s, which this configuration does not (ip.addresses, ha)", p))
		}
	}
	for _, p := range want {
		if !slices.Contains(reported, p) {
			errs = append(errs, fmt.Errorf("ip.addresses lists %s, which prevResult does not report", p))
		}
	}
	return mac, errors.Join(errs...)
}
