package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinariesReportTheirVersion builds the three binaries the way the Makefile does
// and checks each reports the version stamped at link time.
func TestBinariesReportTheirVersion(t *testing.T) {
	dir := t.TempDir()
	const stamp = "v0.0.0-test"
	for _, b := range []struct{ name, pkg string }{
		{"egress-router", "../../plugins/egress-router"},
		{"egress-http-proxy", "../../proxies/egress-http-proxy"},
		{"egress-dns-proxy", "../../proxies/egress-dns-proxy"},
	} {
		bin := filepath.Join(dir, b.name)
		build := exec.Command("go", "build", "-tags", "netgo", "-ldflags",
			"-X github.com/egress-router/egress-router/internal/version.Version="+stamp, "-o", bin, b.pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.name, err, out)
		}
		var cmd *exec.Cmd
		if b.name == "egress-router" {
			cmd = exec.Command(bin) // no CNI_COMMAND: the plugin prints its "about" line
		} else {
			cmd = exec.Command(bin, "-version")
		}
		out, _ := cmd.CombinedOutput()
		if want := b.name + " " + stamp; !strings.Contains(string(out), want) {
			t.Errorf("%s printed %q, want it to contain %q", b.name, out, want)
		}
	}
}
