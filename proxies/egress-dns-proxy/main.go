// Command egress-dns-proxy is the TCP forwarder of dns-proxy mode: each line's local
// port is relayed to a host name re-resolved at run time.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/version"
)

func main() {
	configFile := flag.String("config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy EGRESS_DNS_PROXY_DESTINATION variable")
	check := flag.Bool("check", false, "validate the configuration, print the forwarding table and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("egress-dns-proxy", version.Version)
		return
	}
	c, _, err := config.ForProxy(config.DNSProxy, *configFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *check {
		for _, r := range c.DNSProxy.Rules {
			fmt.Printf("%d\t%s\t%d\n", r.Port, r.Host, r.RemotePort)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "egress-dns-proxy: forwarding is not implemented yet")
	os.Exit(1)
}
