package cpulimit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/cpustat"
	"github.com/egress-router/egress-router/test/topology"
)

// TestHoldLimitsAndReleases holds a spinning shell to a tenth of a core for 2 s (it
// would take a whole one), then checks that the end of the test that held it removed
// the cgroup and moved the shell, still running, back to the root.
func TestHoldLimitsAndReleases(t *testing.T) {
	topology.RequireRoot(t)
	spin := exec.Command("sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spin.Process.Kill(); spin.Wait() })
	pid := spin.Process.Pid
	dir := filepath.Join(root, fmt.Sprintf("egress-bench-%d-spin", os.Getpid()))

	t.Run("held", func(t *testing.T) {
		Hold(t, "spin", 0.1, []int{pid})
		before, err := cpustat.ProcessTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.Sleep(2 * time.Second)
		after, err := cpustat.ProcessTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		// A tenth of a core over the time slept, and two periods' quota more: the
		// periods at either end are partly in it. Unheld, it would be ten times that.
		span := time.Since(start)
		if ran, most := after-before, span/10+2*period/10; ran > most {
			t.Errorf("held to 0.1 of a core, the shell ran %v in %v (at most %v)", ran, span, most)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s is still there after the test (%v)", dir, err)
	}
	if got := cpuCgroup(t, pid); got != "/" {
		t.Errorf("the shell is in cpu cgroup %q after the test, want the root", got)
	}
}

// cpuCgroup is the cpu controller's cgroup of process pid, from /proc/<pid>/cgroup.
func cpuCgroup(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		// hierarchy-ID:controller-list:cgroup-path
		fields := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(fields) == 3 && slices.Contains(strings.Split(fields[1], ","), "cpu") {
			return fields[2]
		}
	}
	t.Fatalf("process %d has no cpu cgroup:\n%s", pid, data)
	return ""
}
