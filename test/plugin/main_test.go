// Package plugin drives the built CNI plugin end to end in the test topology: through
// libcni and cnitool, the data path it programs, and its benchmarks against the
// reference plugins.
package plugin

import (
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

func TestMain(m *testing.M) { topology.Main(m) }
