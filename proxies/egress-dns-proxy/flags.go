package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/egress-router/egress-router/pkg/resolver"
)

type options struct {
	configFile     string
	check          bool
	showVersion    bool
	listenAddr     string
	metricsAddr    string
	dnsServers     string
	dnsTimeout     time.Duration
	ttlFloor       time.Duration
	ttlCeiling     time.Duration
	preferIPv6     bool
	dialTimeout    time.Duration
	idleTimeout    time.Duration
	grace          time.Duration
	maxConns       int
	maxPerClient   int
	reloadInterval time.Duration
}

// parseFlags parses args and validates the values; errors, and the usage on a flag
// error, go to stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	flag := flag.NewFlagSet("egress-dns-proxy", flag.ContinueOnError)
	flag.SetOutput(stderr)
	flag.StringVar(&o.configFile, "config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy EGRESS_DNS_PROXY_DESTINATION variable")
	flag.BoolVar(&o.check, "check", false, "validate the configuration, print the forwarding table with the addresses names resolve to now, and exit")
	flag.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	flag.StringVar(&o.listenAddr, "listen-address", "", "`address` the lines' listeners bind (default all addresses)")
	flag.StringVar(&o.metricsAddr, "metrics-listen", ":9090", "`host:port` of /metrics, /healthz and /readyz")
	flag.StringVar(&o.dnsServers, "dns-server", "", "comma-separated `host:port` name servers (default the nameservers of /etc/resolv.conf)")
	flag.DurationVar(&o.dnsTimeout, "dns-timeout", 2*time.Second, "timeout of one DNS query to one server")
	flag.DurationVar(&o.ttlFloor, "ttl-floor", resolver.DefaultFloor, "shortest time an answer is kept, whatever its TTL")
	flag.DurationVar(&o.ttlCeiling, "ttl-ceiling", resolver.DefaultCeiling, "longest time an answer is kept, whatever its TTL")
	flag.BoolVar(&o.preferIPv6, "prefer-ipv6", false, "dial IPv6 addresses before IPv4 ones")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "timeout of one connection attempt to a destination")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close a connection after this long without data either way (0: never)")
	flag.DurationVar(&o.grace, "drain-grace", 30*time.Second, "on SIGTERM, how long open connections may finish before they are closed")
	flag.IntVar(&o.maxConns, "max-connections", 3000, "open connections across all lines (0: no cap); each costs about 6 file descriptors")
	flag.IntVar(&o.maxPerClient, "max-connections-per-client", 1000, "open connections from one client address (0: no cap)")
	flag.DurationVar(&o.reloadInterval, "reload-interval", 2*time.Second, "how often the -config file is checked for changes (SIGHUP reloads at once)")
	if err := flag.Parse(args); err != nil {
		return o, err
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "egress-dns-proxy:", err)
		return o, err
	}
	return o, nil
}

// validate refuses values the proxy cannot run with, naming each flag. A zero or
// negative TTL bound would have names re-resolved without pause (DNS busy-looping), a
// non-positive reload interval panics the ticker, and negative caps mean nothing.
func (o options) validate() error {
	var errs []error
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{o.dnsTimeout <= 0, "-dns-timeout must be positive"},
		{o.ttlFloor <= 0, "-ttl-floor must be positive"},
		{o.ttlCeiling <= 0, "-ttl-ceiling must be positive"},
		{o.ttlFloor > o.ttlCeiling, "-ttl-floor must not be above -ttl-ceiling"},
		{o.dialTimeout <= 0, "-dial-timeout must be positive"},
		{o.reloadInterval <= 0, "-reload-interval must be positive"},
		{o.idleTimeout < 0, "-idle-timeout must not be negative (0: never)"},
		{o.grace < 0, "-drain-grace must not be negative"},
		{o.maxConns < 0, "-max-connections must not be negative (0: no cap)"},
		{o.maxPerClient < 0, "-max-connections-per-client must not be negative (0: no cap)"},
	} {
		if c.bad {
			errs = append(errs, errors.New(c.msg))
		}
	}
	return errors.Join(errs...)
}
