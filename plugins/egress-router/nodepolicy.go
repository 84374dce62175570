package main

import (
	"net"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// logDir is the one directory log_file may write in: the node policy's, or the
// default one when the policy cannot be read (the command then fails on it, or, for a
// DEL, warns and carries on).
func (inv *invocation) logDir() string {
	if inv.policy == nil {
		return nodepolicy.DefaultLogDir
	}
	return inv.policy.LogDir
}

// admit asks the node policy whether this attachment may be made on master, the
// resolved master link (nil when unknown). ADD, CHECK and STATUS ask it before they
// touch or vouch for anything; a policy that cannot be read, or that refuses, is a
// configuration error (code 7) naming the file.
func (inv *invocation) admit(master netlink.Link) error {
	if inv.policyErr != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "egress-router: invalid node policy", inv.policyErr.Error())
	}
	node, err := readNode(master)
	if err != nil {
		return asCNIError("egress-router: read the node's links", err)
	}
	if err := inv.policy.Check(inv.cfg, node); err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "egress-router: refused by the node policy", err.Error())
	}
	return nil
}

// warnIfRefused is DEL's admit: a policy tightened, or broken, after ADD must not keep
// DEL from removing what ADD made, so a refusal is logged and DEL carries on.
func (inv *invocation) warnIfRefused() {
	master, _ := link.Master(inv.cfg.Interface.Master) // gone: the master rules are skipped
	if err := inv.admit(master); err != nil {
		inv.log.Warn("the node policy refuses this configuration, or cannot be read; removing the attachment anyway", "error", err)
	}
}

// readNode reads, in the caller's (the node's) namespace, what the policy checks need.
func readNode(master netlink.Link) (nodepolicy.Node, error) {
	var n nodepolicy.Node
	if master != nil {
		n.Master = master.Attrs().Name
		n.MasterIsLoopback = master.Attrs().Flags&net.FlagLoopback != 0
	}
	routing, err := link.ReadRouting()
	if err != nil {
		return n, err
	}
	n.DefaultRouteLinks, n.Gateways = routing.DefaultRouteLinks, routing.Gateways
	n.Addresses, err = link.NodeAddresses()
	return n, err
}
