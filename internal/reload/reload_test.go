package reload

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// configMapDir lays a file out the way the kubelet mounts a ConfigMap: the visible name
// is a symlink through "..data" to a timestamped directory, swapped atomically.
func configMapDir(t *testing.T, content string) (path string, update func(string)) {
	dir := t.TempDir()
	n := 0
	write := func(content string) {
		n++
		version := filepath.Join(dir, "..v"+string(rune('0'+n)))
		if err := os.Mkdir(version, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(version, "config.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(version), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write(content)
	path = filepath.Join(dir, "config.json")
	if err := os.Symlink("..data/config.json", path); err != nil {
		t.Fatal(err)
	}
	return path, write
}

func watch(t *testing.T, path string, current string, apply func([]byte) error) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{Path: path, Interval: 20 * time.Millisecond, Apply: apply, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	stopped := w.Start(ctx, []byte(current))
	t.Cleanup(func() { cancel(); <-stopped })
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no reload")
		return ""
	}
}

// noneWithin100ms fails the test if ch yields anything in the next 100 ms.
func noneWithin100ms(t *testing.T, ch <-chan string, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("%s: %q", what, got)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestSymlinkSwapIsApplied(t *testing.T) {
	path, update := configMapDir(t, "v1")
	applied := make(chan string, 10)
	watch(t, path, "v1", func(b []byte) error { applied <- string(b); return nil })
	update("v2")
	if got := next(t, applied); got != "v2" {
		t.Fatalf("applied %q, want v2", got)
	}
	noneWithin100ms(t, applied, "unchanged content applied again")
}

func TestRefusedContentIsNotRetriedUntilItChangesOrSIGHUP(t *testing.T) {
	path, update := configMapDir(t, "good")
	offered := make(chan string, 10)
	watch(t, path, "good", func(b []byte) error {
		offered <- string(b)
		if string(b) == "bad" {
			return errors.New("invalid")
		}
		return nil
	})
	update("bad")
	if got := next(t, offered); got != "bad" {
		t.Fatalf("offered %q", got)
	}
	noneWithin100ms(t, offered, "refused content offered again without a change")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if got := next(t, offered); got != "bad" {
		t.Fatalf("SIGHUP offered %q", got)
	}
	update("fixed")
	if got := next(t, offered); got != "fixed" {
		t.Fatalf("offered %q", got)
	}
}
