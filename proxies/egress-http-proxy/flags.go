package main

import (
	"io"
	"time"

	"github.com/egress-router/egress-router/internal/httpproxy"
	"github.com/egress-router/egress-router/internal/proxyflags"
)

// options are the command line beyond the configuration document.
type options struct {
	proxyflags.Shared
	check                                             bool
	explain                                           string
	connectPorts                                      []uint16
	headerTimeout, upstreamTimeout, tunnelIdleTimeout time.Duration
	maxHeaderBytes, logsPerSecond                     int
	addVia, addForwardedFor                           bool
}

const (
	// minHeaderBytes: below 1 KiB, ordinary requests would be refused as too large.
	minHeaderBytes = 1 << 10
	// maxHeaderBytes is net/http's default cap: each open connection may hold a head
	// this large, so more is memory for a client to take.
	maxHeaderBytes = 1 << 20
)

// parseFlags parses args and checks every value, writing errors (or -help) to stderr;
// proxyflags.ExitCode says how an error ends the program.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	s := proxyflags.New(proxyflags.HTTPProxy, &o.Shared, stderr)
	s.Bool(&o.check, "check", false, "validate the configuration, print the effective rule table and exit")
	s.String(&o.explain, "explain", "", "say which rule decides for `HOST[:PORT]` and whether it is allowed (resolves names; no other network access), then exit")
	s.Ports(&o.connectPorts, "connect-ports", []uint16{443}, "comma-separated `ports` CONNECT tunnels may reach")
	s.Duration(&o.headerTimeout, "header-timeout", httpproxy.DefaultHeaderTimeout, proxyflags.Positive, "bound on receiving a request head once it has started")
	s.Duration(&o.upstreamTimeout, "upstream-timeout", httpproxy.DefaultUpstreamTimeout, proxyflags.Positive, "bound on waiting for a destination's response head")
	s.Duration(&o.tunnelIdleTimeout, "tunnel-idle-timeout", time.Hour, proxyflags.NotNegative, "close a CONNECT tunnel with no data either way for this long (0: never)")
	s.Int(&o.maxHeaderBytes, "max-header-bytes", httpproxy.DefaultMaxHeaderBytes, minHeaderBytes, maxHeaderBytes, "largest request or response head")
	s.Int(&o.logsPerSecond, "decision-logs-per-second", 100, 0, proxyflags.Unbounded, "cap on decision log lines a second (0: none; the rest are counted)")
	s.Bool(&o.addVia, "add-via", false, "add a Via field to requests and responses")
	s.Bool(&o.addForwardedFor, "add-forwarded-for", false, "add X-Forwarded-For with the client's address (it reveals the pod's address)")
	return o, s.Parse(args)
}
