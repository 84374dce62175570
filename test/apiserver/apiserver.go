// Package apiserver starts a real etcd and kube-apiserver for the suites that test
// against one (controller-runtime's envtest), from the binaries
// scripts/envtest-assets.sh builds once and caches outside the repository.
package apiserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Server is a running etcd and kube-apiserver.
type Server struct {
	*envtest.Environment
	certDir string
}

// Start starts etcd and kube-apiserver with the CRDs of the directories installed.
// The caller stops it (Stop).
func Start(crdDirs ...string) (*Server, error) {
	if err := findAssets(); err != nil {
		return nil, err
	}
	// The API server's certificates live in a directory of ours: envtest would make a
	// temporary one, remove it when the API server stops and make new certificates when
	// it starts again, which no client made before would trust.
	certDir, err := os.MkdirTemp("", "egress-router-apiserver-")
	if err != nil {
		return nil, err
	}
	s := &Server{Environment: &envtest.Environment{CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: len(crdDirs) > 0}, certDir: certDir}
	s.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	if _, err := s.Environment.Start(); err != nil {
		os.RemoveAll(certDir)
		return nil, fmt.Errorf("start the API server: %w", err)
	}
	return s, nil
}

// Stop stops kube-apiserver and etcd and removes what they stored.
func (s *Server) Stop() error {
	return errors.Join(s.Environment.Stop(), os.RemoveAll(s.certDir))
}

// StopAPIServer kills kube-apiserver (SIGKILL: it stops answering at once, as when its
// node fails; a graceful stop waits for open watches) and returns once it is gone;
// etcd keeps the cluster's objects. StartAPIServer starts it again.
func (s *Server) StopAPIServer() error {
	pid, err := child("kube-apiserver")
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill kube-apiserver (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			return nil // and envtest has reaped it
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver (pid %d) still there 10s after SIGKILL", pid)
		}
	}
}

// child is the process id of this process's child named name (envtest starts its
// binaries as children).
func child(name string) (int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid …"; comm may hold spaces and parentheses.
		stat := string(b)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		fields := strings.Fields(stat[end+1:])
		if open < 0 || end < open || len(fields) < 2 || stat[open+1:end] != name || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		return strconv.Atoi(strings.TrimSpace(stat[:open]))
	}
	return 0, fmt.Errorf("no child process %s of this process", name)
}

// StartAPIServer starts kube-apiserver after StopAPIServer, on the same port with the
// same certificates, so every client and user made before works again; it returns
// once the API server is healthy.
func (s *Server) StartAPIServer() error {
	if err := s.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return nil
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
