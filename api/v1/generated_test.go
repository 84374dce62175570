package v1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent runs controller-gen (pinned by go.mod) as `make
// generate` does, into a temporary directory, and fails when a committed file differs:
// a marker or type changed without `make generate` would ship a CRD or RBAC rule that
// says something else.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	out := t.TempDir()
	cmd := exec.Command("go", "tool", "controller-gen",
		"object", "paths=./api/...", "output:object:dir="+filepath.Join(out, "object"),
		"crd", "paths=./api/...", "output:crd:artifacts:config="+filepath.Join(out, "crd"),
		"rbac:roleName=egress-router-controller", "paths=./internal/controller/...", "output:rbac:artifacts:config="+filepath.Join(out, "rbac"))
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, msg)
	}
	for generated, committed := range map[string]string{
		"object/zz_generated.deepcopy.go":         "api/v1/zz_generated.deepcopy.go",
		"crd/egress-router.io_egressrouters.yaml": "deploy/kubernetes/controller/crd/egress-router.io_egressrouters.yaml",
		"rbac/role.yaml":                          "deploy/kubernetes/controller/rbac/role.yaml",
	} {
		want, err := os.ReadFile(filepath.Join(out, generated))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, committed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what controller-gen generates now: run make generate", committed)
		}
	}
}
