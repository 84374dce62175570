package main

import (
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/pkg/link"
)

// cmdDel removes what ADD programmed. Everything lives in the pod namespace, so with
// no namespace (empty CNI_NETNS, or already deleted) there is nothing left to remove;
// a missing link, missing rules or no prevResult are equally fine, and so is a repeat.
func cmdDel(args *skel.CmdArgs) error {
	inv, err := load(args)
	if err != nil {
		return err
	}
	defer inv.close()
	inv.warnIfRefused()
	if args.Netns == "" {
		inv.log.Info("DEL: no network namespace, nothing to remove")
		return nil
	}
	podNS, err := ns.GetNS(args.Netns)
	if podNSGone(err) {
		inv.log.Info("DEL: network namespace already gone", "netns", args.Netns)
		return nil
	}
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "cannot open the pod network namespace", err.Error())
	}
	defer podNS.Close()
	spec := link.Plan(inv.cfg, args.IfName, inv.cfg.Interface.Master)
	// Every mode has netfilter state (the input guard at least). No working backend
	// means none could have been written.
	nat, err := planNAT(inv.cfg, args.ContainerID, args.IfName)
	if errors.Is(err, errNoBackend) {
		nat = nil
	}
	if err := detach(podNS, spec, nat); err != nil {
		inv.log.Error("DEL failed", "error", err)
		return asCNIError("egress-router DEL", err)
	}
	inv.log.Info("DEL done")
	return nil
}

// detach removes an attachment's state from the pod namespace. The netfilter state and
// the link go in parallel: removing either waits for RCU grace periods in the kernel
// (hooks unregistered, the device unregistered), which then overlap instead of adding
// up, and neither depends on the other — the rules match the interface by name.
func detach(podNS ns.NetNS, s link.Spec, nat *natState) error {
	inPod := func(f func() error) error { return podNS.Do(func(ns.NetNS) error { return f() }) }
	natRemoved := make(chan error, 1)
	go func() {
		if nat == nil {
			natRemoved <- nil
			return
		}
		natRemoved <- inPod(nat.remove)
	}()
	linkErr := inPod(func() error { return errors.Join(link.RemoveRules(), link.Delete(s)) })
	return errors.Join(<-natRemoved, linkErr)
}
