package topology

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// Main is the TestMain of the end-to-end suites. It points the plugin at a node
// policy file that does not exist, so the plugins the tests run see the defaults (or
// what a test writes) whatever this machine has at the real path, and removes the
// binaries the tests built (Build) once they have run.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main for a TestMain with more to set up around it: it returns the exit code.
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "egress-router-node-policy")
	if err != nil {
		panic(err)
	}
	os.Setenv(nodepolicy.PathEnv, filepath.Join(dir, "absent.json"))
	code := m.Run()
	RemoveBuilds()
	os.RemoveAll(dir)
	return code
}
