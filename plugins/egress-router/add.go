package main

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/egress-router/egress-router/pkg/link"
)

func cmdAdd(args *skel.CmdArgs) error {
	inv, err := load(args)
	if err != nil {
		return err
	}
	defer inv.close()
	podNS, err := openPodNS(args)
	if err != nil {
		inv.log.Error("ADD failed", "error", err)
		return err
	}
	defer podNS.Close()
	iface, spec, err := add(inv, args, podNS)
	if err != nil {
		inv.log.Error("ADD failed", "error", err)
		return asCNIError("egress-router ADD", err)
	}
	inv.log.Info("ADD done", "mac", iface.MAC.String(), "master", spec.Master, "addresses", fmt.Sprint(spec.Addresses))
	return types.PrintResult(newResult(inv, podNS, iface, spec), inv.cfg.CNIVersion)
}

func add(inv *invocation, args *skel.CmdArgs, podNS ns.NetNS) (link.Interface, link.Spec, error) {
	master, err := link.Master(inv.cfg.Interface.Master)
	if err != nil {
		return link.Interface{}, link.Spec{}, err
	}
	if err := inv.admit(master); err != nil {
		return link.Interface{}, link.Spec{}, err
	}
	spec := link.Plan(inv.cfg, args.IfName, master.Attrs().Name)
	nat, err := planNAT(inv.cfg, args.ContainerID, args.IfName)
	if err != nil {
		return link.Interface{}, spec, err
	}
	iface, err := attach(inv.log, podNS, spec, master, nat)
	return iface, spec, err
}

// step is one stage of ADD; undo, when set, reverses it if a later stage fails.
type step struct {
	name string
	do   func() error
	undo func()
}

// failBefore, set only by tests, makes ADD fail before the named step, to prove that
// a failure at any point leaves nothing behind.
var failBefore func(step string) error

// attach runs the stages of ADD in order. If one fails, the completed ones are undone
// in reverse, so the pod namespace is left as it was found.
func attach(log *slog.Logger, podNS ns.NetNS, s link.Spec, master netlink.Link, nat *natState) (link.Interface, error) {
	var (
		iface   link.Interface
		restore func()
	)
	inPod := func(f func() error) func() error {
		return func() error { return podNS.Do(func(ns.NetNS) error { return f() }) }
	}
	undoInPod := func(f func() error) func() {
		return func() { _ = inPod(f)() }
	}
	steps := []step{
		{name: "create link", do: func() (err error) {
			iface, err = link.Create(podNS, s, master)
			return err
		}, undo: undoInPod(func() error { return link.Delete(s.IfName) })},
		{name: "add addresses", do: inPod(func() error { return link.AddAddresses(s) })},
		{name: "set sysctls", do: inPod(func() (err error) {
			restore, err = link.Tune(s)
			return err
		}), undo: func() { _ = inPod(func() error { restore(); return nil })() }},
		{name: "set link up", do: inPod(func() error { return link.Up(s) })},
		{name: "add routes", do: inPod(func() error { return link.AddRoutes(s) }), undo: undoInPod(link.RemoveRules)},
		{name: "apply netfilter", do: inPod(nat.apply), undo: undoInPod(nat.remove)},
		{name: "announce", do: inPod(func() error { return link.Announce(s) })},
	}

	for i, st := range steps {
		start := time.Now()
		err := st.run()
		log.Debug("ADD step", "step", st.name, "seconds", time.Since(start).Seconds(), "ok", err == nil)
		if err != nil {
			for _, done := range slices.Backward(steps[:i]) {
				if done.undo != nil {
					done.undo()
				}
			}
			return link.Interface{}, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return iface, nil
}

func (st step) run() error {
	if failBefore != nil {
		if err := failBefore(st.name); err != nil {
			return err
		}
	}
	return st.do()
}
