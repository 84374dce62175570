package dnsproxy

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/resolver/dnstest"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

// A changed configuration file (or SIGHUP) applies to new connections while the open
// ones carry on: added lines listen, removed ones stop accepting, changed ones go to the
// new destination. An invalid file is refused and logged, and the old lines stay.
func TestDNSProxyReloadKeepsOpenConnections(t *testing.T) {
	before := []string{"80 203.0.113.25", "81 203.0.113.26 80"}
	r := newDNSRouter(t, before...)
	serveEcho(t, r.tp.Dest, "203.0.113.25:80", "203.0.113.26:80", "203.0.113.27:80")
	p := r.start(t, before)
	onRemoved, err := r.dialPod(80, false)
	if err != nil {
		t.Fatal(err)
	}
	onChanged, err := r.dialPod(81, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*conn{onRemoved, onChanged} {
		defer c.Close()
		if _, _, err := c.greeting(); err != nil {
			t.Fatal(err)
		}
	}

	p.WriteConfig(t, dnsProxyConf("81 203.0.113.27 80", "82 203.0.113.25 80"))
	wait.For(t, 10*time.Second, "the reload", func() bool { return strings.Contains(p.Logs.String(), "configuration reloaded") })
	for _, c := range []*conn{onRemoved, onChanged} {
		fmt.Fprintln(c, "still here")
		if line, err := c.r.ReadString('\n'); err != nil || line != "still here\n" {
			t.Fatalf("an open connection after the reload: %q, %v", line, err)
		}
	}
	if c, err := r.dialPod(80, false); err == nil {
		c.Close()
		t.Fatal("the removed line still accepts")
	}
	if dialled, _ := r.greeting(t, 81, false); dialled != "203.0.113.27" {
		t.Fatalf("the changed line reached %s, want 203.0.113.27", dialled)
	}
	if dialled, _ := r.greeting(t, 82, false); dialled != "203.0.113.25" {
		t.Fatalf("the added line reached %s", dialled)
	}

	p.WriteConfig(t, []byte(`{"cniVersion": "1.0.0", "name": "egress-dns", "type": "egress-router", "mode": "dns-proxy",
	  "ip": {"addresses": ["192.0.2.99/24"]}, "dnsProxy": {"destinations": ["82 bad_name"]}}`))
	p.Signal(t, syscall.SIGHUP)
	wait.For(t, 10*time.Second, "the refusal", func() bool { return strings.Contains(p.Logs.String(), "configuration reload refused") })
	if !strings.Contains(p.Logs.String(), `bad_name`) {
		t.Fatalf("the refusal does not say what is wrong:\n%s", p.Logs.String())
	}
	if dialled, _ := r.greeting(t, 82, false); dialled != "203.0.113.25" {
		t.Fatalf("after an invalid reload the line reached %s", dialled)
	}
}

// SIGTERM: listeners close at once, open connections may finish within the grace
// period, and the process exits 0 as soon as they have.
func TestDNSProxySIGTERMDrainsThenExits(t *testing.T) {
	r, p, open := openBeforeSIGTERM(t, "20s")
	p.Signal(t, syscall.SIGTERM)
	wait.For(t, 10*time.Second, "the listener to close", func() bool {
		c, err := r.dialPod(80, false)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	fmt.Fprintln(open, "draining")
	open.CloseWrite()
	if rest, err := io.ReadAll(open.r); err != nil || string(rest) != "draining\nbye\n" {
		t.Fatalf("the open connection while draining: %q, %v", rest, err)
	}
	if err := p.WaitExit(t, 5*time.Second, "its last connection ended"); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Logs.String())
	}
}

// A connection still open when the grace period ends is closed, and the process exits.
func TestDNSProxySIGTERMCutsAfterTheGracePeriod(t *testing.T) {
	_, p, open := openBeforeSIGTERM(t, "500ms")
	began := time.Now()
	p.Signal(t, syscall.SIGTERM)
	if err := p.WaitExit(t, 5*time.Second, "SIGTERM with a 500ms grace period"); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Fatalf("exited after %s, before the grace period ended", took)
	}
	if !open.closedAtOnce() {
		t.Fatal("the connection left open survived the exit")
	}
	if !strings.Contains(p.Logs.String(), "grace period over") {
		t.Fatalf("the cut is not logged:\n%s", p.Logs.String())
	}
}

// -check prints local port, host, remote port and what names resolve to now; it exits
// 1 with every error of a bad configuration, 2 naming a flag whose value is unusable.
func TestDNSProxyCheck(t *testing.T) {
	bin := filepath.Join(topology.Build(t, dnsProxyPkg), "egress-dns-proxy")
	srv := dnstest.Start(t, nil)
	srv.Set("api.example.com", 30, netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("169.254.169.254"))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, dnsProxyConf("80 203.0.113.25", "8443 api.example.com 443", "9000 gone.example.com"), 0o644)
	out, err := exec.Command(bin, "-check", "-config", good, "-dns-server", srv.Addr).CombinedOutput()
	if err != nil {
		t.Fatalf("-check of a good configuration: %v\n%s", err, out)
	}
	for _, want := range []string{
		"80          203.0.113.25      80           203.0.113.25",
		"8443        api.example.com   443          203.0.113.9, 169.254.169.254 (refused: ",
		"9000        gone.example.com  9000         (not resolved now: ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-check output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, dnsProxyConf("80 203.0.113.256", "81 a.example.com", "81 c.example.com", "99999 b.example.com"), 0o644)
	out, err = exec.Command(bin, "-check", "-config", bad).CombinedOutput()
	if code := proxyproc.ExitCode(err); code != 1 {
		t.Fatalf("-check of a bad configuration exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{`"80 203.0.113.256"`, `"81 c.example.com"`, `"99999 b.example.com"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-check does not report line %s:\n%s", want, out)
		}
	}

	out, err = exec.Command(bin, "-check", "-config", good, "-ttl-ceiling", "0").CombinedOutput()
	if code := proxyproc.ExitCode(err); code != 2 || !strings.Contains(string(out), "for flag -ttl-ceiling: must be positive") {
		t.Fatalf("-ttl-ceiling 0 exited %d, want 2 naming the flag:\n%s", code, out)
	}
}

// openBeforeSIGTERM starts the proxy with one line and the given -drain-grace, and
// opens a connection through it that has had its greeting.
func openBeforeSIGTERM(t *testing.T, grace string) (*dnsRouter, *proxyproc.Process, *conn) {
	t.Helper()
	r := newDNSRouter(t, "80 203.0.113.25")
	serveEcho(t, r.tp.Dest, "203.0.113.25:80")
	p := r.start(t, []string{"80 203.0.113.25"}, "-drain-grace", grace)
	open, err := r.dialPod(80, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { open.Close() })
	open.greeting()
	return r, p, open
}

// A flag value the DNS proxy cannot run with is a usage error, as for the HTTP proxy
// (TestHTTPProxyCLIRefusesUnusableFlagsWithExit2); -help lists the deprecated
// spellings.
func TestDNSProxyCLIRefusesUnusableFlagsWithExit2(t *testing.T) {
	bin := filepath.Join(topology.Build(t, dnsProxyPkg), "egress-dns-proxy")
	conf := filepath.Join(t.TempDir(), "dns.json")
	os.WriteFile(conf, dnsProxyConf("80 203.0.113.25"), 0o644)
	for _, tc := range []proxyproc.ExitCase{
		{Name: "a negative reload interval", Args: []string{"-config", conf, "-reload-interval=-1s"}, Code: 2,
			Want: []string{"-reload-interval", "must be at least 100ms"}},
		{Name: "help names the deprecated spelling and its replacement", Args: []string{"-help"}, Code: 0,
			Want: []string{"-listen-address", "deprecated: use -listen"}},
	} {
		t.Run(tc.Name, func(t *testing.T) { tc.Check(t, bin) })
	}
}
