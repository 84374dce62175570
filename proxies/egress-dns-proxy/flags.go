package main

import (
	"fmt"
	"io"
	"time"

	"github.com/egress-router/egress-router/internal/proxyflags"
	"github.com/egress-router/egress-router/internal/resolver"
)

// options are the command line beyond the configuration document.
type options struct {
	proxyflags.Shared
	check                bool
	ttlFloor, ttlCeiling time.Duration
	preferIPv6           bool
}

// parseFlags parses args and checks every value, writing errors (or -help) to stderr;
// proxyflags.ExitCode says how an error ends the program.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	s := proxyflags.New(proxyflags.DNSProxy, &o.Shared, stderr)
	s.Bool(&o.check, "check", false, "validate the configuration, print the forwarding table with the addresses names resolve to now, and exit")
	// A TTL bound of zero would have names re-resolved without pause (DNS busy-looping).
	s.Duration(&o.ttlFloor, "ttl-floor", resolver.DefaultFloor, proxyflags.Positive, "shortest time an answer is kept, whatever its TTL")
	s.Duration(&o.ttlCeiling, "ttl-ceiling", resolver.DefaultCeiling, proxyflags.Positive, "longest time an answer is kept, whatever its TTL")
	s.Check(func() error {
		if o.ttlFloor > o.ttlCeiling {
			return fmt.Errorf("-ttl-floor (%s) must not be above -ttl-ceiling (%s)", o.ttlFloor, o.ttlCeiling)
		}
		return nil
	})
	s.Bool(&o.preferIPv6, "prefer-ipv6", false, "dial IPv6 addresses before IPv4 ones")
	return o, s.Parse(args)
}
