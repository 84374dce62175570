// Command egress-http-proxy is the HTTP/HTTPS forward proxy of http-proxy mode. See the
// README's "HTTP proxy" section for the flags.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/proxyflags"
	"github.com/egress-router/egress-router/internal/version"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(proxyflags.ExitCode(err))
	}
	os.Exit(run(o))
}

func run(o options) int {
	if o.Version {
		fmt.Println("egress-http-proxy", version.Version)
		return 0
	}
	c, data, err := config.ForProxy(config.HTTPProxy, o.ConfigFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch {
	case o.check:
		printRules(os.Stdout, c)
	case o.explain != "":
		if err := printExplanation(context.Background(), os.Stdout, c, newResolver(o.DNSServers, o.DNSTimeout), o.explain); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	default:
		if err := serve(o, c, data); err != nil {
			fmt.Fprintln(os.Stderr, "egress-http-proxy:", err)
			return 1
		}
	}
	return 0
}
