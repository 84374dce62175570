// Command egress-http-proxy is the HTTP/HTTPS forward proxy of http-proxy mode.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/httpproxy"
	"github.com/egress-router/egress-router/pkg/version"
)

// options are the command line beyond the configuration document.
type options struct {
	configFile, listen, metricsListen, dnsServer, connectPorts string
	dialTimeout, headerTimeout, idleTimeout, upstreamTimeout   time.Duration
	tunnelIdleTimeout, drainGrace, reloadInterval              time.Duration
	maxHeaderBytes, maxConns, maxConnsPerClient, logsPerSecond int
	addVia, addForwardedFor                                    bool
}

func main() {
	var o options
	flag.StringVar(&o.configFile, "config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy EGRESS_HTTP_PROXY_DESTINATION variable")
	check := flag.Bool("check", false, "validate the configuration, print the effective rule table and exit")
	explain := flag.String("explain", "", "say which rule decides for `HOST[:PORT]` and whether it is allowed (resolves names; no other network access), then exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.StringVar(&o.listen, "listen", ":8080", "proxy `address`")
	flag.StringVar(&o.metricsListen, "metrics-listen", ":9090", "`address` of /metrics, /healthz and /readyz; empty: none")
	flag.StringVar(&o.dnsServer, "dns-server", "", "DNS server `host:port` for destination names; default: the system's (/etc/resolv.conf)")
	flag.StringVar(&o.connectPorts, "connect-ports", "443", "comma-separated `ports` CONNECT tunnels may reach")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", httpproxy.DefaultDialTimeout, "bound on resolving and connecting to a destination")
	flag.DurationVar(&o.headerTimeout, "header-timeout", httpproxy.DefaultHeaderTimeout, "bound on receiving a request head once it has started")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", httpproxy.DefaultIdleTimeout, "bound on a keep-alive connection between requests, and on each read or write of a body")
	flag.DurationVar(&o.upstreamTimeout, "upstream-timeout", httpproxy.DefaultUpstreamTimeout, "bound on waiting for a destination's response head")
	flag.DurationVar(&o.tunnelIdleTimeout, "tunnel-idle-timeout", time.Hour, "close a CONNECT tunnel with no data either way for this long; 0: never")
	flag.DurationVar(&o.drainGrace, "drain-grace", 30*time.Second, "on SIGTERM, how long requests and tunnels under way may continue")
	flag.DurationVar(&o.reloadInterval, "reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	flag.IntVar(&o.maxHeaderBytes, "max-header-bytes", httpproxy.DefaultMaxHeaderBytes, "largest request or response head")
	flag.IntVar(&o.maxConns, "max-connections", 8000, "client connections open at once, in all")
	flag.IntVar(&o.maxConnsPerClient, "max-connections-per-client", 2500, "client connections open at once from one client address")
	flag.IntVar(&o.logsPerSecond, "decision-logs-per-second", 100, "cap on decision log lines a second")
	flag.BoolVar(&o.addVia, "add-via", false, "add a Via field to requests and responses")
	flag.BoolVar(&o.addForwardedFor, "add-forwarded-for", false, "add X-Forwarded-For with the client's address (it reveals the pod's address)")
	flag.Parse()
	if *showVersion {
		fmt.Println("egress-http-proxy", version.Version)
		return
	}
	c, data, err := config.ForProxy(config.HTTPProxy, o.configFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch {
	case *check:
		printRules(os.Stdout, c)
	case *explain != "":
		if err := printExplanation(context.Background(), os.Stdout, c, newResolver(o.dnsServer), *explain); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		if err := serve(o, c, data); err != nil {
			fmt.Fprintln(os.Stderr, "egress-http-proxy:", err)
			os.Exit(1)
		}
	}
}
