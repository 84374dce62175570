// Command egress-http-proxy is the HTTP/HTTPS forward proxy of http-proxy mode.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/version"
)

func main() {
	configFile := flag.String("config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy EGRESS_HTTP_PROXY_DESTINATION variable")
	check := flag.Bool("check", false, "validate the configuration, print the effective rule table and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("egress-http-proxy", version.Version)
		return
	}
	c, _, err := config.ForProxy(config.HTTPProxy, *configFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *check {
		for i, r := range c.HTTPProxy.Rules {
			decision := "allow"
			if r.Deny {
				decision = "deny"
			}
			fmt.Printf("%d\t%s\t%s\t%s\n", i+1, decision, r.Kind, r)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "egress-http-proxy: serving is not implemented yet")
	os.Exit(1)
}
