// Package dnsproxy drives the built egress-dns-proxy in the test topology: relaying,
// run-time resolution, reload, drain, its command line, and its benchmark against
// HAProxy and nginx.
package dnsproxy

import (
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

func TestMain(m *testing.M) { topology.Main(m) }
