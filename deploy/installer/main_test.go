package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/logging"
)

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
