// Package apiserver starts a real etcd and kube-apiserver for the suites that test
// against one (controller-runtime's envtest), from the binaries
// scripts/envtest-assets.sh builds once and caches outside the repository.
package apiserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Start starts etcd and kube-apiserver with the CRDs of the directories installed.
// The caller stops it (Environment.Stop).
func Start(crdDirs ...string) (*envtest.Environment, error) {
	if err := findAssets(); err != nil {
		return nil, err
	}
	env := &envtest.Environment{CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: len(crdDirs) > 0}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start the API server: %w", err)
	}
	return env, nil
}

// findAssets points envtest at etcd and kube-apiserver: the script builds them once
// and prints their directory.
func findAssets() error {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return nil
	}
	_, here, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(here), "..", "..", "scripts", "envtest-assets.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("scripts/envtest-assets.sh: %w", err)
	}
	return os.Setenv("KUBEBUILDER_ASSETS", strings.TrimSpace(string(out)))
}
