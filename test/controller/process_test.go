package controller_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/capture"
)

// process is a program the test runs: the controller binary, or a proxy inside a
// router pod's network namespace.
type process struct {
	name   string
	cmd    *exec.Cmd
	logs   *capture.Buffer
	exited chan error // receives the exit, then is closed
}

// startProcess runs bin with args, in network namespace netns unless it is nil. The
// process is killed (by its PID) when the test ends, and its output logged if the
// test failed.
func startProcess(t testing.TB, netns ns.NetNS, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: filepath.Base(bin), logs: &capture.Buffer{}, exited: make(chan error, 1)}
	if netns != nil {
		args = append([]string{"--net=" + netns.Path(), "--", bin}, args...)
		bin = "nsenter"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // a no-op once it has exited
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit error; the test fails if the process is
// still running after within.
func (p *process) stop(t testing.TB, within time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(within):
		t.Fatalf("%s still running %v after SIGTERM", p.name, within)
		return nil
	}
}

// running fails the test if the process has exited.
func (p *process) running() error {
	select {
	case err := <-p.exited:
		return fmt.Errorf("%s exited (%v):\n%s", p.name, err, p.logs.String())
	default:
		return nil
	}
}

// freeLoopbackAddr returns a loopback address with a port nothing listens on now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeFile writes data to a new file in a temporary directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// replaceArg returns args with the argument old replaced by new; the test fails if
// old is not among them.
func replaceArg(t testing.TB, args []string, old, new string) []string {
	t.Helper()
	out := make([]string, len(args))
	found := false
	for i, a := range args {
		out[i] = a
		if a == old {
			out[i], found = new, true
		}
	}
	if !found {
		t.Fatalf("args %q lack %s", args, old)
	}
	return out
}
