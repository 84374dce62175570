package main

import (
	"testing"

	"github.com/egress-router/egress-router/internal/proxyflags/flagtest"
)

// Every flag is accepted within its range, boundaries included, and refused outside
// it with an error naming the flag and the range; -listen-address is -listen.
func TestEveryFlagIsRangeCheckedByName(t *testing.T) {
	flagtest.Run(t, parseFlags, append(flagtest.Shared(), []flagtest.Case{
		{Args: []string{"-listen=192.0.2.1"}},
		{Args: []string{"-listen=2001:db8::1"}},
		{Args: []string{"-listen="}}, // all addresses
		{Args: []string{"-listen=192.0.2.1:80"}, Want: []string{"-listen", "want an IP address without a port"}},
		{Args: []string{"-listen=localhost"}, Want: []string{"-listen", "want an IP address"}},
		{Args: []string{"-listen-address=192.0.2.1"}, Same: []string{"-listen=192.0.2.1"}},
		{Args: []string{"-listen-address=[2001:db8::1]"}, Want: []string{"-listen-address", "want an IP address"}},

		{Args: []string{"-idle-timeout=0"}}, // never
		{Args: []string{"-idle-timeout=1ns"}},
		{Args: []string{"-idle-timeout=-1ns"}, Want: []string{"-idle-timeout", "must be 0 or positive"}},

		{Args: []string{"-ttl-floor=1ns"}},
		{Args: []string{"-ttl-floor=0"}, Want: []string{"-ttl-floor", "must be positive"}},
		{Args: []string{"-ttl-floor=-5s"}, Want: []string{"-ttl-floor", "must be positive"}},
		{Args: []string{"-ttl-ceiling=1s", "-ttl-floor=1s"}},
		{Args: []string{"-ttl-ceiling=0"}, Want: []string{"-ttl-ceiling", "must be positive"}},
		{Args: []string{"-ttl-ceiling=soon"}, Want: []string{`invalid value "soon" for flag -ttl-ceiling`}},
		{Args: []string{"-ttl-floor=10m", "-ttl-ceiling=1m"}, Want: []string{"-ttl-floor (10m0s) must not be above -ttl-ceiling (1m0s)"}},

		{Args: []string{"-prefer-ipv6"}},
		{Args: []string{"-prefer-ipv6=maybe"}, Want: []string{"-prefer-ipv6"}},
		{Args: []string{"-check"}},
		{Args: []string{"-check=maybe"}, Want: []string{"-check"}},
	}...))
}
