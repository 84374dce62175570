// Package httpproxy drives the built egress-http-proxy in the test topology: requests
// and tunnels through it, its command line, and its benchmark against Squid and
// Smokescreen.
package httpproxy

import (
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

func TestMain(m *testing.M) { topology.Main(m) }
