// Package demo runs the README's first command, the demo script, as a test: every mode
// must work and nothing the script created may outlive it.
package demo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

func TestMain(m *testing.M) {
	code := m.Run()
	topology.RemoveBuilds()
	os.Exit(code)
}

// TestDemoRunsEveryModeAndLeavesNothingBehind runs scripts/demo.sh with all three modes,
// then looks for anything it left: network namespaces and links named after its run,
// cnitool's cached results for its network, running copies of its binaries, and
// temporary files. Other tests may run meanwhile, so only the demo's names count.
func TestDemoRunsEveryModeAndLeavesNothingBehind(t *testing.T) {
	topology.RequireRoot(t)
	bin := topology.Build(t, topology.RouterPlugin, topology.Cnitool,
		"github.com/egress-router/egress-router/proxies/egress-http-proxy",
		"github.com/egress-router/egress-router/proxies/egress-dns-proxy")
	tmp := t.TempDir()

	var out strings.Builder
	cmd := exec.Command("scripts/demo.sh")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "BIN="+bin, "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("er%d", cmd.Process.Pid) // the script names everything after $$
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"[redirect]", "[http-proxy]", "[dns-proxy]", "Done: everything the demo created is gone."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out.String())
		}
	}

	for what, names := range leftovers(t) {
		for _, name := range names {
			if strings.Contains(name, run) {
				t.Errorf("the demo left %s behind: %s", what, name)
			}
		}
	}
	if running := processesFrom(t, bin); len(running) > 0 {
		t.Errorf("the demo left its binaries running: %q", running)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the demo left temporary files in TMPDIR: %v", left)
	}
}

// leftovers lists, by kind, what a run could leave on the machine.
func leftovers(t *testing.T) map[string][]string {
	t.Helper()
	namespaces, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	return map[string][]string{
		"a network namespace":     field(namespaces, 0),
		"a link":                  field(links, 1),
		"a cnitool cached result": results,
	}
}

// field returns the n-th field of each line of out.
func field(out []byte, n int) []string {
	var fields []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > n {
			fields = append(fields, f[n])
		}
	}
	return fields
}

// processesFrom lists the running processes whose executable lives in dir.
func processesFrom(t *testing.T, dir string) []string {
	t.Helper()
	exes, err := filepath.Glob("/proc/[0-9]*/exe")
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && strings.HasPrefix(target, dir+"/") {
			running = append(running, filepath.Dir(exe)+" "+target)
		}
	}
	return running
}

// repoRoot is the module's root, where the demo script runs from.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
