// Package proxyproc runs a program the tests start (a proxy in a test namespace, the
// controller) and watches it: its output, its exit, its metrics server, its memory, its
// CPU time.
package proxyproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/capture"
	"github.com/egress-router/egress-router/test/cpulimit"
	"github.com/egress-router/egress-router/test/cpustat"
	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

// Process is a proxy running in one of the topology's namespaces (the router
// pod): one of the project's (Start), or one measured against them (Run). Metrics and
// MetricsFrom are the caller's to set, for Get.
type Process struct {
	// Metrics is the proxy's metrics server (host:port) as dialled from metricsFrom.
	Metrics     string
	MetricsFrom ns.NetNS
	// StopSignal, when set, is sent before the kill at the test's end, for a program
	// whose children would outlive it (nginx's workers): it waits for the program to
	// stop them and exit.
	StopSignal syscall.Signal

	name       string // the program, for messages
	configFile string // the file -config names; WriteConfig replaces it
	cmd        *exec.Cmd
	Logs       *capture.Buffer // its stdout and stderr
	exited     chan error      // receives the process's exit, then is closed
}

// Start runs bin in namespace n on the configuration conf, with flags, and waits until
// it serves (/healthz answers).
func (p *Process) Start(t testing.TB, n ns.NetNS, bin string, conf []byte, flags ...string) *Process {
	t.Helper()
	p.configFile = filepath.Join(t.TempDir(), "config.json")
	p.WriteConfig(t, conf)
	p.Run(t, n, bin, append([]string{"-config", p.configFile}, flags...)...)
	p.WaitOK(t, "/healthz")
	return p
}

// Run runs name with args in namespace n, or in the test's own when n is nil. It is
// killed (by its PID) when the test ends, and its output logged if the test failed.
func (p *Process) Run(t testing.TB, n ns.NetNS, name string, args ...string) *Process {
	t.Helper()
	p.name, p.Logs, p.exited = filepath.Base(name), &capture.Buffer{}, make(chan error, 1)
	if n != nil {
		name, args = "nsenter", append([]string{"--net=" + n.Path(), "--", name}, args...)
	}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if p.StopSignal != 0 {
			p.cmd.Process.Signal(p.StopSignal) // an error once it has exited
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
			}
		}
		p.cmd.Process.Kill() // a no-op once it has exited
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", p.name, p.Logs.String())
		}
	})
	return p
}

// WriteConfig replaces the configuration file: write then rename, as a ConfigMap
// update swaps the file whole.
func (p *Process) WriteConfig(t testing.TB, conf []byte) {
	t.Helper()
	tmp := p.configFile + ".new"
	if err := os.WriteFile(tmp, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.configFile); err != nil {
		t.Fatal(err)
	}
}

func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// WaitExit waits up to within for the process to exit and returns its exit error; the
// test fails if it is still running then, after what the message says (why).
func (p *Process) WaitExit(t testing.TB, within time.Duration, why string) error {
	t.Helper()
	select {
	case err := <-p.exited:
		return err
	case <-time.After(within):
		t.Fatalf("%s still running %v after %s", p.name, within, why)
		return nil
	}
}

// Exited returns an error saying so, with the output, once the process has exited;
// nil while it runs.
func (p *Process) Exited() error {
	select {
	case err := <-p.exited:
		return fmt.Errorf("%s exited (%v):\n%s", p.name, err, p.Logs.String())
	default:
		return nil
	}
}

// WaitReady waits for /readyz: the proxy relays connections.
func (p *Process) WaitReady(t testing.TB) {
	t.Helper()
	p.WaitOK(t, "/readyz")
}

func (p *Process) WaitOK(t testing.TB, path string) {
	t.Helper()
	p.WaitUntil(t, 10*time.Second, path+" to answer 200", func() bool { code, _ := p.Get(path); return code == http.StatusOK })
}

// WaitUntil polls cond for up to within, failing at once if the process exits.
func (p *Process) WaitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !wait.Until(within, func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v) while waiting for %s:\n%s", p.name, err, what, p.Logs.String())
		default:
		}
		return cond()
	}) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Get fetches a path of the metrics server.
func (p *Process) Get(path string) (int, string) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: DialIn(p.MetricsFrom)}}
	resp, err := client.Get("http://" + p.Metrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Metric returns the value of a sample line of /metrics, such as
// `egress_dns_proxy_dial_errors_total{port="80"}`; -1 when absent.
func (p *Process) Metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, body := p.Get("/metrics")
	for l := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// ResidentBytes reads the resident memory (VmRSS) of the process and of every process
// under it (nginx's workers, Squid's helpers): what the proxy holds as a whole.
func (p *Process) ResidentBytes(t testing.TB) int64 {
	t.Helper()
	var total int64
	for _, pid := range p.tree() {
		rss, err := statusBytes(pid, "VmRSS")
		if err != nil && pid == p.cmd.Process.Pid {
			t.Fatal(err)
		}
		total += rss // a child that has just exited adds nothing
	}
	return total
}

// CPUTime is how long the threads of the process and of every process under it have
// run (cpustat.ProcessTime): what the proxy has cost as a whole.
func (p *Process) CPUTime() (time.Duration, error) {
	var total time.Duration
	for _, pid := range p.tree() {
		ran, err := cpustat.ProcessTime(pid)
		if err != nil && pid == p.cmd.Process.Pid {
			return 0, err
		}
		total += ran // a child that has just exited adds nothing
	}
	return total, nil
}

// HoldCPU holds the process and every process under it to cores of a core, together
// (cpulimit.Hold), until the test ends.
func (p *Process) HoldCPU(t testing.TB, cores float64) {
	t.Helper()
	cpulimit.Hold(t, fmt.Sprintf("%s-%d", p.name, p.cmd.Process.Pid), cores, p.tree())
}

// tree lists the process and every process under it, parents first.
func (p *Process) tree() []int {
	pids := []int{p.cmd.Process.Pid}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, children(pids[i])...)
	}
	return pids
}

// Memory reads a memory figure of the process, in bytes, from /proc/<pid>/status:
// VmRSS (resident now), VmHWM (its peak).
func (p *Process) Memory(t testing.TB, field string) int64 {
	t.Helper()
	v, err := statusBytes(p.cmd.Process.Pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// statusBytes reads a figure in kB of /proc/<pid>/status, in bytes.
func statusBytes(pid int, field string) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			var kib int64
			fmt.Sscan(v, &kib) // "  1234 kB"
			return kib << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// children lists the processes whose parent is pid (from each process's stat: this
// kernel has no /proc/<pid>/task/<tid>/children).
func children(pid int) []int {
	var kids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		stat, err := os.ReadFile(f)
		if err != nil {
			continue // exited
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		var kid, ppid int
		var state string
		fmt.Sscan(string(stat), &kid)
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			fmt.Sscan(string(stat[i+1:]), &state, &ppid)
		}
		if ppid == pid {
			kids = append(kids, kid)
		}
	}
	return kids
}

// Version is the version number a program prints ("2.6.12" of `haproxy -v`), for a
// benchmark's notes; empty when it prints none.
func Version(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return versionNumber.FindString(string(out))
}

var versionNumber = regexp.MustCompile(`\d+\.\d+(\.\d+)?`)

// DialIn returns a DialContext that makes its sockets in namespace n.
func DialIn(n ns.NetNS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = n.Do(func(ns.NetNS) error {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// ExitCode is the exit status err (of Wait, WaitExit) reports: 0 for nil, -1 when the
// process did not exit by itself.
func ExitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// ExitCase is a command line a proxy must refuse (or answer, as -help) and exit.
type ExitCase struct {
	Name string
	Args []string
	Code int      // the exit status wanted
	Want []string // what the output must contain
}

// Check runs bin with the case's arguments in a namespace of its own and fails t
// unless it exits with Code within five seconds, without a panic, saying each of Want.
func (c ExitCase) Check(t *testing.T, bin string) {
	t.Helper()
	p := (&Process{}).Run(t, topology.NewNS(t), bin, c.Args...)
	code := ExitCode(p.WaitExit(t, 5*time.Second, strings.Join(c.Args, " ")))
	out := p.Logs.String()
	if code != c.Code || strings.Contains(out, "panic") {
		t.Fatalf("exit %d, want %d without a panic:\n%s", code, c.Code, out)
	}
	for _, w := range c.Want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
