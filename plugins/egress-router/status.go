package main

import (
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/egress-router/egress-router/internal/link"
)

// cmdStatus reports whether ADD could succeed now: the master link exists and is up,
// and a NAT backend works (every mode writes the input guard). Either failing
// is code 50.
func cmdStatus(args *skel.CmdArgs) error {
	inv, err := load(args)
	if err != nil {
		return err
	}
	defer inv.close()
	master, err := link.Master(inv.cfg.Interface.Master)
	if err != nil {
		return types.NewError(errPluginNotAvailable, "egress-router: no master link", err.Error())
	}
	if master.Attrs().Flags&net.FlagUp == 0 {
		return types.NewError(errPluginNotAvailable, "egress-router: master link "+master.Attrs().Name+" is down", "")
	}
	if err := inv.admit(master); err != nil {
		return err
	}
	if _, err := availableBackend(inv.cfg.Backend); err != nil {
		return types.NewError(errPluginNotAvailable, "egress-router: no NAT backend works on this node", err.Error())
	}
	return nil
}

// cmdGC validates the configuration and otherwise does nothing, which is correct for
// this plugin: every piece of state an attachment creates (the macvlan, its addresses,
// routes and rules, the NAT tables, the sysctls) lives inside the pod's network
// namespace and disappears with it. Nothing is kept on the node, in files or in the
// node's namespace, so there is nothing an attachment that no longer exists could have
// leaked for GC to collect.
func cmdGC(args *skel.CmdArgs) error {
	inv, err := load(args)
	if err != nil {
		return err
	}
	inv.close()
	return nil
}
