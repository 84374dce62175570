package main

import (
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
	"github.com/egress-router/egress-router/internal/plan"
)

// cmdDel removes what ADD programmed. It never refuses a configuration: the state is
// found by the attachment's identity (container ID, interface name), and a runtime
// that cannot DEL can never tear the pod down — after an upgrade that tightened
// validation, a NAD edited after the pod started, or a DEL that follows a failed ADD.
// Validation problems are logged as warnings. Everything lives in the pod namespace,
// so with no namespace (empty CNI_NETNS, or already deleted) there is nothing left to
// remove; a missing link, missing rules or no prevResult are equally fine, and so is a
// repeat.
func cmdDel(args *skel.CmdArgs) error {
	cfg, invalid := config.Load(args.StdinData)
	td := config.ReadTeardown(args.StdinData)
	inv := &invocation{cfg: cfg}
	inv.open(args, td.Name, td.LogFile, td.LogLevel)
	defer inv.close()
	if invalid != nil {
		inv.log.Warn("DEL: the configuration does not validate; removing the attachment anyway", "error", invalid)
	} else {
		inv.warnIfRefused()
	}
	if args.Netns == "" {
		inv.log.Info("DEL: no network namespace, nothing to remove")
		return nil
	}
	if err := refuseOwnNS(args); err != nil {
		return err
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
	// Every mode has netfilter state (the input guard at least). No working backend
	// means none could have been written.
	var nf *plan.Netfilter
	if backend, err := nat.New(string(td.Backend)); err == nil {
		nf = &plan.Netfilter{Backend: backend, Attachment: nat.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}}
	}
	if err := detach(podNS, args.IfName, nf); err != nil {
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
func detach(podNS ns.NetNS, ifName string, nf *plan.Netfilter) error {
	inPod := func(f func() error) error { return podNS.Do(func(ns.NetNS) error { return f() }) }
	natRemoved := make(chan error, 1)
	go func() {
		if nf == nil {
			natRemoved <- nil
			return
		}
		natRemoved <- inPod(nf.Remove)
	}()
	linkErr := inPod(func() error { return errors.Join(link.RemoveRules(), link.Delete(ifName)) })
	return errors.Join(<-natRemoved, linkErr)
}
