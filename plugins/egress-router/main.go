// Command egress-router is the CNI plugin: it gives a router pod a macvlan interface
// with the reserved source IP and, in redirect mode, the NAT that sends connections on.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: notYet, Del: notYet, Check: notYet},
		cniversion.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"),
		"egress-router "+version.Version)
}

// notYet validates the configuration, the part that exists so far.
func notYet(args *skel.CmdArgs) error {
	if _, err := config.Load(args.StdinData); err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "invalid egress-router configuration", err.Error())
	}
	return types.NewError(types.ErrInternal, "egress-router: network setup is not implemented yet", "")
}
