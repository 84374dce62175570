package main

import (
	"errors"
	"io"
	"log"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
)

// runDel is the binary's DEL, in place of skel's: skel refuses a configuration it
// cannot decode (not JSON, no name, an unknown cniVersion) before any plugin code
// runs, and DEL must clean up whatever configuration it is given. The environment is
// checked as skel checks it for DEL, and an error is printed to stdout as skel prints
// one. It returns the exit status.
func runDel(getenv func(string) string, stdin io.Reader) int {
	err := delFromEnv(getenv, stdin)
	if err == nil {
		return 0
	}
	var e *types.Error
	if !errors.As(err, &e) {
		e = types.NewError(types.ErrInternal, err.Error(), "")
	}
	if err := e.Print(); err != nil {
		log.Print("cannot write the error to stdout: ", err)
	}
	return 1
}

func delFromEnv(getenv func(string) string, stdin io.Reader) error {
	args := &skel.CmdArgs{
		ContainerID:   getenv("CNI_CONTAINERID"),
		Netns:         getenv("CNI_NETNS"),
		IfName:        getenv("CNI_IFNAME"),
		Args:          getenv("CNI_ARGS"),
		Path:          getenv("CNI_PATH"),
		NetnsOverride: getenv("CNI_NETNS_OVERRIDE"),
	}
	for _, required := range []string{"CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"} {
		if getenv(required) == "" {
			return types.NewError(types.ErrInvalidEnvironmentVariables, "required env variable "+required+" missing", "")
		}
	}
	if err := utils.ValidateContainerID(args.ContainerID); err != nil {
		return err
	}
	if err := utils.ValidateInterfaceName(args.IfName); err != nil {
		return err
	}
	var err error
	if args.StdinData, err = io.ReadAll(stdin); err != nil {
		return types.NewError(types.ErrIOFailure, "cannot read the configuration from stdin", err.Error())
	}
	return cmdDel(args)
}
