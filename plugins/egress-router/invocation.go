package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"

	cnins "github.com/containernetworking/cni/pkg/ns"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// invocation is one call's validated input: the configuration, the chained
// prevResult (nil without one), the node policy and the logger log_file/log_level ask
// for.
type invocation struct {
	cfg  *config.Config
	prev *current.Result
	// policy is the node's policy; nil, with policyErr saying why, when it cannot be
	// read (see admit).
	policy    *nodepolicy.Policy
	policyErr error
	log       *slog.Logger
	closer    io.Closer
}

// load validates the configuration before anything touches the kernel, so a bad
// config is reported as such (code 7) even when CNI_NETNS does not exist.
func load(args *skel.CmdArgs) (*invocation, error) {
	cfg, err := config.Load(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid egress-router configuration", err.Error())
	}
	inv := &invocation{cfg: cfg}
	if cfg.RawPrevResult != nil {
		if err := cniversion.ParsePrevResult(&cfg.PluginConf); err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid prevResult", err.Error())
		}
		if inv.prev, err = current.NewResultFromResult(cfg.PrevResult); err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "prevResult cannot be converted", err.Error())
		}
	}
	inv.open(args, cfg.Name, cfg.LogFile, cfg.LogLevel)
	return inv, nil
}

// open reads the node policy and opens the command's logger in the policy's log
// directory, each line naming the call it belongs to. Neither can fail the command:
// a policy that cannot be read is reported by admit (or DEL's warning), and a log file
// that cannot be used falls back to stderr.
func (inv *invocation) open(args *skel.CmdArgs, network, logFile string, level slog.Level) {
	inv.policy, inv.policyErr = nodepolicy.Load()
	inv.log, inv.closer = logging.OpenIn(inv.logDir(), logFile, network, level, os.Stderr)
	inv.log = inv.log.With("command", os.Getenv("CNI_COMMAND"), "network", network,
		"container", args.ContainerID, "ifname", args.IfName)
}

func (inv *invocation) close() { inv.closer.Close() }

// openPodNS opens CNI_NETNS; a missing or bogus path is a bad environment (code 4),
// the plugin's own namespace an invalid one (refuseOwnNS).
func openPodNS(args *skel.CmdArgs) (ns.NetNS, error) {
	if args.Netns == "" {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_NETNS is empty", "")
	}
	if err := refuseOwnNS(args); err != nil {
		return nil, err
	}
	n, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "cannot open the pod network namespace", err.Error())
	}
	return n, nil
}

// refuseOwnNS refuses a CNI_NETNS that is the plugin's own namespace, the node's,
// unless CNI_NETNS_OVERRIDE allows it (code 8, as skel). skel checks this only after
// the command has run, when ADD has already configured the node's namespace and DEL
// deleted the node's link named CNI_IFNAME; a path that cannot be opened passes, for
// the caller to judge.
func refuseOwnNS(args *skel.CmdArgs) error {
	if strings.EqualFold(args.NetnsOverride, "true") || args.NetnsOverride == "1" {
		return nil
	}
	own, err := cnins.CheckNetNS(args.Netns)
	if err != nil {
		return err
	}
	if own {
		return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS is the plugin's own network namespace, not a pod's", args.Netns)
	}
	return nil
}

// podNSGone reports an error of ns.GetNS meaning the namespace no longer exists.
func podNSGone(err error) bool {
	var missing ns.NSPathNotExistErr
	return errors.As(err, &missing)
}
