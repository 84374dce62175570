package install

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const name = "egress-router"

// source writes content to a file outside dir, as the image's copy of the plugin.
func source(t *testing.T, content string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return src
}

// requireInstalled checks dir holds exactly name with content and Mode: no temporary
// files are left behind.
func requireInstalled(t *testing.T, dir, content string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("dir holds %v, want only %s", names, name)
	}
	path := filepath.Join(dir, name)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("installed content %q, want %q", got, content)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode() != Mode {
		t.Errorf("installed mode %v, want %v", info.Mode(), Mode)
	}
}

func TestBinaryInstallsWhatIsThere(t *testing.T) {
	for _, tc := range []struct {
		name      string
		existing  string      // content in place before; "" = nothing
		mode      os.FileMode // of the existing file
		wantWrite bool
	}{
		{name: "fresh directory", wantWrite: true},
		{name: "identical binary is left alone", existing: "new", mode: Mode, wantWrite: false},
		{name: "older binary is replaced", existing: "old", mode: Mode, wantWrite: true},
		{name: "longer older binary is replaced", existing: "older and longer", mode: Mode, wantWrite: true},
		{name: "same content with wrong mode is fixed", existing: "new", mode: 0o644, wantWrite: true},
		{name: "read-only older binary is replaced", existing: "old", mode: 0o500, wantWrite: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.existing != "" {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, name), tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			wrote, err := Binary(source(t, "new"), dir, name)
			if err != nil {
				t.Fatal(err)
			}
			if wrote != tc.wantWrite {
				t.Errorf("Binary wrote = %v, want %v", wrote, tc.wantWrite)
			}
			requireInstalled(t, dir, "new")
		})
	}
}

func TestBinaryRerunWritesNothing(t *testing.T) {
	dir, src := t.TempDir(), source(t, "plugin")
	if wrote, err := Binary(src, dir, name); err != nil || !wrote {
		t.Fatalf("first run: wrote=%v err=%v, want a write", wrote, err)
	}
	before, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if wrote, err := Binary(src, dir, name); err != nil || wrote {
		t.Fatalf("rerun: wrote=%v err=%v, want nothing written", wrote, err)
	}
	after, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("rerun replaced the file although its content was identical")
	}
	requireInstalled(t, dir, "plugin")
}

// A restrictive umask must not leave the plugin unexecutable by the runtime.
func TestBinaryModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if _, err := Binary(source(t, "plugin"), dir, name); err != nil {
		t.Fatal(err)
	}
	requireInstalled(t, dir, "plugin")
}

// A runtime that opened (is executing) the old binary keeps reading the old content:
// the new file is a new inode, never the old one rewritten in place.
func TestBinaryLeavesOpenOldBinaryIntact(t *testing.T) {
	dir := t.TempDir()
	if _, err := Binary(source(t, "old"), dir, name); err != nil {
		t.Fatal(err)
	}
	running, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	if _, err := Binary(source(t, "new"), dir, name); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(running); err != nil {
		t.Fatal(err)
	}
	if got.String() != "old" {
		t.Errorf("open old binary reads %q, want %q", got.String(), "old")
	}
	requireInstalled(t, dir, "new")
}

// Readers of the final name only ever see one complete version, while installs of two
// large versions alternate underneath them.
func TestBinaryFinalNameIsNeverPartial(t *testing.T) {
	dir := t.TempDir()
	versions := []string{strings.Repeat("a", 4<<20), strings.Repeat("b", 4<<20+1)}
	sources := []string{source(t, versions[0]), source(t, versions[1])}
	if _, err := Binary(sources[0], dir, name); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := Binary(sources[(i+1)%2], dir, name); err != nil {
				t.Error(err)
				break
			}
		}
		close(done)
	}()
	reads := 0
	for {
		select {
		case <-done:
			wg.Wait()
			if reads == 0 {
				t.Fatal("no read overlapped the installs")
			}
			return
		default:
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("read during install: %v", err)
		}
		if s := string(got); s != versions[0] && s != versions[1] {
			t.Fatalf("read a partial binary of %d bytes", len(got))
		}
		reads++
	}
}

func TestBinaryReportsAMissingSourceAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	_, err := Binary(filepath.Join(dir, "absent"), dir, name)
	if err == nil || !strings.Contains(err.Error(), "read the binary to install") {
		t.Fatalf("err = %v, want it to say the source could not be read", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("dir holds %d entries after a failed install, want none", len(entries))
	}
}

func TestBinaryReportsAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	if _, err := Binary(source(t, "plugin"), dir, name); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want it to name %s", err, dir)
	}
}

// File installs any file the same way: a new one, an update, an identical rerun that
// writes nothing; the mode is the one asked for, whatever the umask.
func TestFileInstallsAndUpdatesAtomically(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	const policy = "node-policy.json"
	for _, step := range []struct {
		content   string
		wantWrite bool
	}{{`{}`, true}, {`{}`, false}, {`{"masters": ["ens4"]}`, true}} {
		wrote, err := File(dir, policy, []byte(step.content), 0o644)
		if err != nil || wrote != step.wantWrite {
			t.Fatalf("File(%s) wrote=%v err=%v, want wrote=%v", step.content, wrote, err, step.wantWrite)
		}
		entries, _ := os.ReadDir(dir)
		got, _ := os.ReadFile(filepath.Join(dir, policy))
		info, _ := os.Stat(filepath.Join(dir, policy))
		if len(entries) != 1 || string(got) != step.content || info.Mode() != 0o644 {
			t.Fatalf("after File(%s): %d entries, content %q, mode %v", step.content, len(entries), got, info.Mode())
		}
	}
}

func TestRemoveRemovesOnceAndToleratesAbsence(t *testing.T) {
	dir := t.TempDir()
	if _, err := File(dir, "f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []bool{true, false} {
		if removed, err := Remove(dir, "f"); err != nil || removed != want {
			t.Fatalf("Remove: removed=%v err=%v, want removed=%v", removed, err, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("dir holds %d entries", len(entries))
	}
}
