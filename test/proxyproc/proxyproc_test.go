package proxyproc

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/cpustat"
)

// TestCPUTimeCountsTheProcessesUnderIt runs a shell that waits, idle, on a child that
// spins, as nginx's master waits on its workers: the process's CPU time must count the
// child's, or a proxy whose workers do the work would measure as costing nothing. It
// waits, at most 10 s, until the tree has run 100 ms more than the parent alone.
func TestCPUTimeCountsTheProcessesUnderIt(t *testing.T) {
	cmd := exec.Command("sh", "-c", "(while :; do :; done) & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the child is in its group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		cmd.Wait()
	})
	p := &Process{cmd: cmd}
	const want = 100 * time.Millisecond
	var children time.Duration
	for giveUp := time.Now().Add(10 * time.Second); children < want && time.Now().Before(giveUp); time.Sleep(20 * time.Millisecond) {
		tree, err := p.CPUTime()
		if err != nil {
			t.Fatal(err)
		}
		parent, err := cpustat.ProcessTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		children = tree - parent
	}
	if children < want {
		t.Errorf("the spinning child counted %v of the tree's CPU time in 10 s, want %v or more", children, want)
	}
}
