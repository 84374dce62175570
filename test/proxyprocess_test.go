package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/capture"
)

// proxyProcess is a proxy running in one of the topology's namespaces (the router
// pod): one of the project's (start), or one measured against them (run). metrics and
// metricsFrom are the caller's to set, for get.
type proxyProcess struct {
	// metrics is the proxy's metrics server (host:port) as dialled from metricsFrom.
	metrics     string
	metricsFrom ns.NetNS

	name       string // the program, for messages
	configFile string // the file -config names; writeConfig replaces it
	cmd        *exec.Cmd
	logs       *capture.Buffer
	exited     chan error // receives the process's exit, then is closed
}

// start runs bin in namespace n on the configuration conf, with flags, and waits until
// it serves (/healthz answers).
func (p *proxyProcess) start(t testing.TB, n ns.NetNS, bin string, conf []byte, flags ...string) *proxyProcess {
	t.Helper()
	p.configFile = filepath.Join(t.TempDir(), "config.json")
	p.writeConfig(t, conf)
	p.run(t, n, bin, append([]string{"-config", p.configFile}, flags...)...)
	p.waitOK(t, "/healthz")
	return p
}

// run runs name with args in namespace n. It is killed (by its PID) when the test
// ends, and its output logged if the test failed.
func (p *proxyProcess) run(t testing.TB, n ns.NetNS, name string, args ...string) *proxyProcess {
	t.Helper()
	p.name, p.logs, p.exited = filepath.Base(name), &capture.Buffer{}, make(chan error, 1)
	p.cmd = exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--", name}, args...)...)
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
			t.Logf("%s logs:\n%s", p.name, p.logs.String())
		}
	})
	return p
}

// writeConfig replaces the configuration file: write then rename, as a ConfigMap
// update swaps the file whole.
func (p *proxyProcess) writeConfig(t testing.TB, conf []byte) {
	t.Helper()
	tmp := p.configFile + ".new"
	if err := os.WriteFile(tmp, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.configFile); err != nil {
		t.Fatal(err)
	}
}

func (p *proxyProcess) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits up to within for the process to exit and returns its exit error; the
// test fails if it is still running then, after what the message says (why).
func (p *proxyProcess) waitExit(t testing.TB, within time.Duration, why string) error {
	t.Helper()
	select {
	case err := <-p.exited:
		return err
	case <-time.After(within):
		t.Fatalf("%s still running %v after %s", p.name, within, why)
		return nil
	}
}

// waitReady waits for /readyz: the proxy relays connections.
func (p *proxyProcess) waitReady(t testing.TB) {
	t.Helper()
	p.waitOK(t, "/readyz")
}

func (p *proxyProcess) waitOK(t testing.TB, path string) {
	t.Helper()
	p.waitUntil(t, 10*time.Second, path+" to answer 200", func() bool { code, _ := p.get(path); return code == http.StatusOK })
}

// waitUntil polls cond for up to within, failing at once if the process exits.
func (p *proxyProcess) waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(within, func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v) while waiting for %s:\n%s", p.name, err, what, p.logs.String())
		default:
		}
		return cond()
	}) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// get fetches a path of the metrics server.
func (p *proxyProcess) get(path string) (int, string) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dialIn(p.metricsFrom)}}
	resp, err := client.Get("http://" + p.metrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of a sample line of /metrics, such as
// `egress_dns_proxy_dial_errors_total{port="80"}`; -1 when absent.
func (p *proxyProcess) metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, body := p.get("/metrics")
	for l := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// residentBytes reads the process's resident memory (VmRSS).
func (p *proxyProcess) residentBytes(t testing.TB) int64 {
	t.Helper()
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int64
			fmt.Sscan(v, &kib) // "  1234 kB"
			return kib << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// dialIn returns a DialContext that makes its sockets in namespace n.
func dialIn(n ns.NetNS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = n.Do(func(ns.NetNS) error {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// eventually polls cond for up to 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// poll calls cond every 20ms until it holds or within has passed, and reports whether
// it held.
func poll(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
