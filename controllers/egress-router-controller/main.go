// Command egress-router-controller turns each EgressRouter (egress-router.io/v1) into
// a working egress router: the network configuration as a ConfigMap and a Multus
// NetworkAttachmentDefinition, the router's Deployment, its Service and
// ServiceAccount, and the router's status. `egress-router-controller render -f FILE`
// prints those objects without a cluster. See the README's "EgressRouter resource".
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/egress-router/egress-router/internal/render"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "render" {
		os.Exit(renderCommand(args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runCommand(args, os.Stderr))
}

// imageFlags registers the router images' flags, the same for both commands.
func imageFlags(fs *flag.FlagSet) *render.Images {
	images := render.DefaultImages()
	fs.StringVar(&images.HTTPProxy, "http-proxy-image", images.HTTPProxy, "`image` of egress-http-proxy, for HTTPProxy routers")
	fs.StringVar(&images.DNSProxy, "dns-proxy-image", images.DNSProxy, "`image` of egress-dns-proxy, for DNSProxy routers")
	fs.StringVar(&images.Pause, "pause-image", images.Pause, "`image` that keeps a Redirect router's pod alive")
	fs.StringVar(&images.Agent, "agent-image", images.Agent, "`image` of egress-router-agent, in every pod of a router with replicas > 1")
	return &images
}

// parse parses args, printing errors and -help to stderr; it returns the exit code
// to end with, or -1 to carry on.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2
	}
	return -1
}
