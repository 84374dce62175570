// Package cpulimit holds a benchmark's proxies to a share of a core each, as a pod's
// CPU limit does: each in a cgroup of its own whose CFS quota (cgroup v1's cpu
// controller) allows that share per period. On cores that the clients, the proxies
// and the servers share, a proxy's rate is set by its cost per operation and by how
// much of the cores stays idle; under a limit, only by its cost.
package cpulimit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Why is what a limit changes, for a benchmark's notes.
const Why = "each proxy's processes in a cgroup of their own with that CFS quota, as a pod's CPU limit sets: the rates then follow each proxy's own cost rather than the shared cores' idle time"

// root is cgroup v1's cpu hierarchy, where this machine's kernel puts the controller.
const root = "/sys/fs/cgroup/cpu"

// period is the CFS period of each limit: the kernel's default.
const period = 100 * time.Millisecond

// Cores is BENCH_CPU_LIMIT, the share of a core each proxy is held to; 0 when unset.
func Cores(t testing.TB) float64 {
	env := os.Getenv("BENCH_CPU_LIMIT")
	if env == "" {
		return 0
	}
	cores, err := strconv.ParseFloat(env, 64)
	if err != nil || cores < 0.01 || cores > 64 {
		t.Fatalf("BENCH_CPU_LIMIT=%q: not a share of a core from 0.01 to 64", env)
	}
	return cores
}

// Hold moves the processes pids (a proxy's, all of them: each one's threads follow it)
// into a new cgroup named after name, held to cores per period. The processes they
// start later are born in it. When the test ends, whatever is still in the cgroup
// moves back to the root and the cgroup is removed: Squid's pinger helpers, for
// one, outlive Squid by a minute or two.
func Hold(t testing.TB, name string, cores float64, pids []int) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "cpu.cfs_quota_us")); err != nil {
		t.Fatalf("BENCH_CPU_LIMIT needs cgroup v1's cpu controller at %s: %v", root, err)
	}
	dir := filepath.Join(root, fmt.Sprintf("egress-bench-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("cpu limit of %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := release(dir); err != nil {
			t.Errorf("cpu limit of %s: %v", name, err)
		}
	})
	if err := write(dir, "cpu.cfs_period_us", period.Microseconds()); err != nil {
		t.Fatalf("cpu limit of %s: %v", name, err)
	}
	if err := write(dir, "cpu.cfs_quota_us", int64(cores*float64(period.Microseconds()))); err != nil {
		t.Fatalf("cpu limit of %s: %v", name, err)
	}
	for _, pid := range pids {
		if err := write(dir, "cgroup.procs", int64(pid)); err != nil {
			t.Fatalf("cpu limit of %s: process %d: %v", name, pid, err)
		}
	}
}

// release moves the processes left in dir back to the root cgroup and removes dir.
func release(dir string) error {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, pid := range strings.Fields(string(procs)) {
		n, _ := strconv.ParseInt(pid, 10, 64)
		// A process that has exited meanwhile (ESRCH) has left the cgroup by itself.
		if err := write(root, "cgroup.procs", n); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return os.Remove(dir)
}

func write(dir, file string, value int64) error {
	return os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(value, 10)), 0o644)
}
