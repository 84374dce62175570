package main

import (
	"testing"

	"github.com/egress-router/egress-router/internal/proxyflags/flagtest"
)

// Every flag is accepted within its range, boundaries included, and refused outside
// it with an error naming the flag and the range.
func TestEveryFlagIsRangeCheckedByName(t *testing.T) {
	const (
		listen   = "want HOST:PORT, HOST an IP address or empty for all addresses"
		port     = "want 1 to 65535"
		positive = "must be positive"
	)
	flagtest.Run(t, parseFlags, append(flagtest.Shared(), []flagtest.Case{
		{Args: []string{"-listen=127.0.0.1:1"}},
		{Args: []string{"-listen=[::]:65535"}},
		{Args: []string{"-listen="}, Want: []string{"-listen", listen}},
		{Args: []string{"-listen=:0"}, Want: []string{"-listen", port}},
		{Args: []string{"-listen=:65536"}, Want: []string{"-listen", port}},
		{Args: []string{"-listen=8080"}, Want: []string{"-listen", listen}},
		{Args: []string{"-listen=localhost:8080"}, Want: []string{"-listen", listen}},

		{Args: []string{"-idle-timeout=1ns"}},
		{Args: []string{"-idle-timeout=0"}, Want: []string{"-idle-timeout", positive}},

		{Args: []string{"-connect-ports=1,65535"}},
		{Args: []string{"-connect-ports= 443, 7"}, Same: []string{"-connect-ports=443,7"}},
		{Args: []string{"-connect-ports=0"}, Want: []string{"-connect-ports", `"0" is not a port`, port}},
		{Args: []string{"-connect-ports=443,65536"}, Want: []string{"-connect-ports", `"65536" is not a port`}},
		{Args: []string{"-connect-ports="}, Want: []string{"-connect-ports", port}},
		{Args: []string{"-connect-ports=443,,7"}, Want: []string{"-connect-ports", port}},
		{Args: []string{"-connect-ports=https"}, Want: []string{"-connect-ports", `"https" is not a port`}},

		{Args: []string{"-header-timeout=1ns"}},
		{Args: []string{"-header-timeout=0"}, Want: []string{"-header-timeout", positive}},
		{Args: []string{"-upstream-timeout=1ns"}},
		{Args: []string{"-upstream-timeout=-1s"}, Want: []string{"-upstream-timeout", positive}},
		{Args: []string{"-tunnel-idle-timeout=0"}}, // never
		{Args: []string{"-tunnel-idle-timeout=-1ns"}, Want: []string{"-tunnel-idle-timeout", "must be 0 or positive"}},

		{Args: []string{"-max-header-bytes=1024"}},
		{Args: []string{"-max-header-bytes=1048576"}},
		{Args: []string{"-max-header-bytes=1023"}, Want: []string{"-max-header-bytes", "must be from 1024 to 1048576"}},
		{Args: []string{"-max-header-bytes=1048577"}, Want: []string{"-max-header-bytes", "must be from 1024 to 1048576"}},
		{Args: []string{"-decision-logs-per-second=0"}}, // none
		{Args: []string{"-decision-logs-per-second=-1"}, Want: []string{"-decision-logs-per-second", "must be 0 or more"}},

		{Args: []string{"-add-via"}},
		{Args: []string{"-add-via=maybe"}, Want: []string{"-add-via"}},
		{Args: []string{"-add-forwarded-for"}},
		{Args: []string{"-add-forwarded-for=maybe"}, Want: []string{"-add-forwarded-for"}},
		{Args: []string{"-check"}},
		{Args: []string{"-check=maybe"}, Want: []string{"-check"}},
		{Args: []string{"-explain=www.example.com:443"}},
		{Args: []string{"-explain"}, Want: []string{"flag needs an argument: -explain"}},
	}...))
}
