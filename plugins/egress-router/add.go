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

	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
	"github.com/egress-router/egress-router/internal/plan"
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
	var iface link.Interface
	master, p, err := inv.plan(args)
	if err == nil {
		iface, err = attach(inv.log, podNS, p, master)
	}
	if err != nil {
		inv.log.Error("ADD failed", "error", err)
		return asCNIError("egress-router ADD", err)
	}
	inv.log.Info("ADD done", "mac", iface.MAC.String(), "master", p.Link.Master, "addresses", fmt.Sprint(p.Activation.Addresses))
	return types.PrintResult(newResult(inv, podNS, iface, p.ResultAddresses()), inv.cfg.CNIVersion)
}

// plan resolves the master link, asks the node policy, picks the NAT backend and
// plans the attachment: everything ADD and CHECK need before the pod namespace is
// touched.
func (inv *invocation) plan(args *skel.CmdArgs) (netlink.Link, plan.Plan, error) {
	master, err := link.Master(inv.cfg.Interface.Master)
	if err != nil {
		return nil, plan.Plan{}, err
	}
	if err := inv.admit(master); err != nil {
		return nil, plan.Plan{}, err
	}
	backend, err := availableBackend(inv.cfg.Backend)
	if err != nil {
		return nil, plan.Plan{}, err
	}
	att := nat.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	return master, plan.New(inv.cfg, att, master.Attrs().Name, backend), nil
}

// step is one stage of ADD; undo, when set, reverses it if a later stage fails.
type step struct {
	name string
	do   func() error
	undo func()
	// activation marks the stages of plan.Activation, which in HA mode are the agent's.
	activation bool
}

// failBefore, set only by tests, makes ADD fail before the named step, to prove that
// a failure at any point leaves nothing behind.
var failBefore func(step string) error

// attach applies the plan's parts in the order the kernel needs: the addresses are on
// the link before it comes up (the kernel announces IPv4 ones then), the routes need
// it up, and the input guard is in place before it is (the rules match net1 by name),
// so the reserved address is never reachable unguarded. In HA mode it applies Link and
// Netfilter only: the agent holding the Lease adds the rest. If a stage fails, the
// completed ones are undone in reverse, so the pod namespace is left as it was found.
func attach(log *slog.Logger, podNS ns.NetNS, p plan.Plan, master netlink.Link) (link.Interface, error) {
	var (
		iface                    link.Interface
		restore, restoreTimeWait func()
	)
	inPod := func(f func() error) func() error {
		return func() error { return podNS.Do(func(ns.NetNS) error { return f() }) }
	}
	undoInPod := func(f func() error) func() {
		return func() { _ = inPod(f)() }
	}
	// undoWith runs, in the pod, the undo a step's do stored in *restore.
	undoWith := func(restore *func()) func() {
		return undoInPod(func() error { (*restore)(); return nil })
	}
	steps := []step{
		{name: "create link", do: func() (err error) {
			iface, err = link.Create(podNS, p.Link, master)
			return err
		}, undo: undoInPod(func() error { return link.Delete(p.Link.Name) })},
		{name: "add addresses", do: inPod(func() error { return link.AddAddresses(p.Activation) }), activation: true},
		{name: "set sysctls", do: inPod(func() (err error) {
			restore, err = link.Tune(p.Link)
			return err
		}), undo: undoWith(&restore)},
		{name: "apply netfilter", do: inPod(p.Netfilter.Apply), undo: undoInPod(p.Netfilter.Remove)},
		{name: "shorten conntrack TIME_WAIT", do: inPod(func() (err error) {
			restoreTimeWait, err = p.Netfilter.ShortenTimeWait()
			return err
		}), undo: undoWith(&restoreTimeWait)},
		{name: "set link up", do: inPod(func() error { return link.Up(p.Link.Name) })},
		{name: "add routes", do: inPod(func() error { return link.AddRoutes(p.Activation) }), undo: undoInPod(link.RemoveRules), activation: true},
		{name: "announce", do: inPod(func() error { return link.Announce(p.Activation) }), activation: true},
	}
	if p.HA {
		steps = slices.DeleteFunc(steps, func(st step) bool { return st.activation })
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
