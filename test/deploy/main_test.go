// Package deploy checks what ships: the Kubernetes manifests, the images run through
// podman with the plugin, and the binaries' version stamps.
package deploy

import (
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

func TestMain(m *testing.M) { topology.Main(m) }
