package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/test/topology"
)

// TestMain removes the binaries the tests built (topology.Build) once they have run.
func TestMain(m *testing.M) { topology.Main(m) }

func TestRunInstallsThenIdlesUntilStopped(t *testing.T) {
	src := filepath.Join(t.TempDir(), "egress-router")
	if err := os.WriteFile(src, []byte("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, logging.New(io.Discard, 0), src, binDir, noPolicy(t)) }()

	installed := filepath.Join(binDir, "egress-router")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, err := os.ReadFile(installed); err == nil && string(got) == "plugin" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not installed within 5s", installed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("run returned before it was stopped: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of being stopped")
	}
}

func TestRunFailsWithoutTheBinDir(t *testing.T) {
	src := filepath.Join(t.TempDir(), "egress-router")
	if err := os.WriteFile(src, []byte("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), logging.New(io.Discard, 0), src, filepath.Join(t.TempDir(), "absent"), noPolicy(t))
	if err == nil {
		t.Fatal("run succeeded without a CNI bin directory")
	}
}

// A poll interval the ticker cannot take, or one that would re-read the file without
// pause, is a usage error naming the flag (exit 2), never a panic.
func TestAnUnusablePolicyPollIsAUsageError(t *testing.T) {
	bin := filepath.Join(topology.Build(t, "github.com/egress-router/egress-router/deploy/installer"), "installer")
	src := filepath.Join(t.TempDir(), "egress-router")
	if err := os.WriteFile(src, []byte("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, poll := range []string{"0", "-1s", "99ms"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "-node-policy-poll="+poll, "-source", src, "-cni-bin-dir", t.TempDir(),
			"-node-policy", filepath.Join(t.TempDir(), "none"), "-node-policy-dir", t.TempDir()).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "-node-policy-poll: must be at least 100ms") || strings.Contains(string(out), "panic") {
			t.Errorf("-node-policy-poll=%s: %v\n%s", poll, err, out)
		}
	}
}
