package logging

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenInWritesOnlyInTheLogDirectory(t *testing.T) {
	for _, tc := range []struct {
		name string
		// file returns log_file and a path outside dir that must not appear.
		file func(t *testing.T, dir, outside string) (string, string)
		// want: "named" (log_file itself), "network" (dir/<network>.log, with a
		// warning there) or "stderr" (the fallback, with a warning).
		want string
	}{
		{"a file in the directory", func(_ *testing.T, dir, _ string) (string, string) {
			return filepath.Join(dir, "router.log"), ""
		}, "named"},
		{"a file outside", func(_ *testing.T, _, outside string) (string, string) {
			return filepath.Join(outside, "profile"), filepath.Join(outside, "profile")
		}, "network"},
		{"a missing directory outside", func(_ *testing.T, _, outside string) (string, string) {
			return filepath.Join(outside, "a", "b.log"), filepath.Join(outside, "a")
		}, "network"},
		{"a subdirectory of the directory", func(_ *testing.T, dir, _ string) (string, string) {
			return filepath.Join(dir, "sub", "b.log"), filepath.Join(dir, "sub")
		}, "network"},
		{"a path climbing out", func(_ *testing.T, dir, outside string) (string, string) {
			return dir + "/../" + filepath.Base(outside) + "/x", filepath.Join(outside, "x")
		}, "network"},
		{"a relative path", func(_ *testing.T, _, _ string) (string, string) { return "router.log", "" }, "network"},
		{"a symlink in the directory", func(t *testing.T, dir, outside string) (string, string) {
			if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "link.log")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "link.log"), filepath.Join(outside, "target")
		}, "stderr"},
		{"a FIFO in the directory", func(t *testing.T, dir, _ string) (string, string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "fifo.log"), ""
		}, "stderr"},
		{"a directory in the directory", func(t *testing.T, dir, _ string) (string, string) {
			if err := os.Mkdir(filepath.Join(dir, "d.log"), 0o700); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "d.log"), ""
		}, "stderr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := filepath.Join(t.TempDir(), "logs"), t.TempDir()
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			file, untouched := tc.file(t, dir, outside)
			var stderr bytes.Buffer
			opened := make(chan struct{})
			go func() {
				defer close(opened)
				log, closer := OpenIn(dir, file, "net/../a", slog.LevelInfo, &stderr)
				log.Info("hello")
				closer.Close()
			}()
			select {
			case <-opened:
			case <-time.After(5 * time.Second):
				t.Fatal("OpenIn blocked")
			}
			if untouched != "" {
				if _, err := os.Lstat(untouched); err == nil {
					t.Errorf("%s was created", untouched)
				}
			}
			named, network := readRegular(file), readRegular(filepath.Join(dir, "net_.._a.log"))
			got := map[string]string{"named": named, "network": network, "stderr": stderr.String()}
			for where, text := range got {
				if has := strings.Contains(text, `"msg":"hello"`); has != (where == tc.want) {
					t.Errorf("%s has the line: %v, want it only in %s\n%s", where, has, tc.want, text)
				}
			}
			if tc.want != "named" && strings.Count(got[tc.want], `"level":"WARN"`) != 1 {
				t.Errorf("want one warning in %s:\n%s", tc.want, got[tc.want])
			}
		})
	}
}

// readRegular returns the content of path if it is a regular file (reading a FIFO
// would block), else "".
func readRegular(path string) string {
	if info, err := os.Lstat(path); err != nil || !info.Mode().IsRegular() {
		return ""
	}
	b, _ := os.ReadFile(path)
	return string(b)
}

func TestOpenInCreatesOnlyTheDirectoryItself(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "logs")
	log, closer := OpenIn(dir, filepath.Join(dir, "a.log"), "n", slog.LevelInfo, os.Stderr)
	log.Info("x")
	closer.Close()
	if info, err := os.Stat(dir); err != nil || !info.IsDir() || info.Mode().Perm()&0o027 != 0 {
		t.Fatalf("log directory: %v %v, want a directory closed to others", info.Mode(), err)
	}
	var stderr bytes.Buffer
	deeper := filepath.Join(parent, "missing", "logs")
	log, closer = OpenIn(deeper, filepath.Join(deeper, "a.log"), "n", slog.LevelInfo, &stderr)
	log.Info("x")
	closer.Close()
	if _, err := os.Stat(filepath.Join(parent, "missing")); err == nil {
		t.Error("the log directory's missing parent was created")
	}
	if !strings.Contains(stderr.String(), `"msg":"x"`) {
		t.Errorf("no fallback to stderr:\n%s", stderr.String())
	}
}

func TestOpenInWithoutLogFileWritesToTheFallbackSilently(t *testing.T) {
	var stderr bytes.Buffer
	log, closer := OpenIn(filepath.Join(t.TempDir(), "absent"), "", "n", slog.LevelInfo, &stderr)
	log.Info("x")
	closer.Close()
	if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, `"msg":"x"`) {
		t.Errorf("stderr:\n%s", s)
	}
}

func TestFileNameForNetwork(t *testing.T) {
	for name, want := range map[string]string{
		"egress-router-cni-nad":  "egress-router-cni-nad.log",
		"../../etc/passwd":       "_.._etc_passwd.log",
		"..":                     "egress-router.log",
		"":                       "egress-router.log",
		".hidden":                "hidden.log",
		"a b\x00c/é":             "a_b_c__.log",
		strings.Repeat("x", 300): strings.Repeat("x", maxNameLen) + ".log",
	} {
		if got := fileNameFor(name); got != want {
			t.Errorf("fileNameFor(%q) = %q, want %q", name, got, want)
		}
	}
}

// Whoever may write the log directory's parent (on some distributions /var/log is
// group-writable) could replace the directory with a symlink to /etc/profile.d: the
// plugin, root, would then create log_file there. A symlinked directory is refused.
func TestOpenInRefusesALogDirectoryThatIsASymlink(t *testing.T) {
	outside := t.TempDir()
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	log, closer := OpenIn(dir, filepath.Join(dir, "zz.sh"), "n", slog.LevelInfo, &stderr)
	log.Info("x")
	closer.Close()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote through the symlinked log directory: %s", filepath.Join(outside, entries[0].Name()))
	}
	if !strings.Contains(stderr.String(), `"msg":"x"`) || !strings.Contains(stderr.String(), `"level":"WARN"`) {
		t.Errorf("want the line and a warning on stderr:\n%s", stderr.String())
	}
}
