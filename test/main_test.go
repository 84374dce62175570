package test

import (
	"os"
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

// TestMain removes the binaries the tests built (topology.Build) once they have run.
func TestMain(m *testing.M) {
	code := m.Run()
	topology.RemoveBuilds()
	os.Exit(code)
}
