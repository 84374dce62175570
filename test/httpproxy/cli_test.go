package httpproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/resolver/dnstest"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// -check prints the rule table and exits 0, or every error and exits 1; -explain says
// which rule decides, resolving through the given DNS server only.
func TestHTTPProxyCheckAndExplain(t *testing.T) {
	bin := filepath.Join(topology.Build(t, httpProxyPkg), "egress-http-proxy")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, routerConfig("!*.Internal.Example.com.", "203.0.113.0/24", "*.example.com", "*"), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, routerConfig("*", "203.0.113.0/33", "http://x"), 0o644)
	dns := dnstest.Start(t, nil)
	dns.Set("www.example.com", 60, webAddr)
	dns.Set("meta.example.com", 60, mustAddr("169.254.169.254"))
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"check prints the normalised table", []string{"-config", good, "-check"}, 0,
			[]string{"1\tdeny\tdomain\t!*.internal.example.com", "2\tallow\trange\t203.0.113.0/24", "4\tallow\tany\t*"}},
		{"check lists every error", []string{"-config", bad, "-check"}, 1,
			[]string{`"*"`, "must be the last line", "203.0.113.0/33", "http://x"}},
		{"explain a denied name without resolving", []string{"-config", good, "-dns-server", dns.Addr, "-explain", "db.internal.example.com"}, 0,
			[]string{"deny", "rule 1"}},
		{"explain a denied name spelt with a Unicode full stop", []string{"-config", good, "-dns-server", dns.Addr, "-explain", "db.internal.example.com\uff61"}, 0,
			[]string{"db.internal.example.com:80\tdeny", "rule 1"}},
		{"explain an allowed name", []string{"-config", good, "-dns-server", dns.Addr, "-explain", "WWW.example.com:8080"}, 0,
			[]string{"www.example.com:8080", "dial 203.0.113.80:8080", "allow", "rule 2"}},
		{"explain a name resolving to metadata", []string{"-config", good, "-dns-server", dns.Addr, "-explain", "meta.example.com"}, 0,
			[]string{"dial 169.254.169.254:80", "deny", "metadata"}},
		{"explain refuses a second spelling", []string{"-config", good, "-explain", "0x7f.1"}, 1, []string{"one spelling"}},
		{"version", []string{"-version"}, 0, []string{"egress-http-proxy "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// A flag value the HTTP proxy cannot run with is a usage error: exit 2 with a message
// naming the flag and its range, before anything listens (it runs in a namespace of
// its own all the same, with a configuration it would serve), and never a panic.
// -help exits 0. (The DNS proxy's twin: TestDNSProxyCLIRefusesUnusableFlagsWithExit2.)
func TestHTTPProxyCLIRefusesUnusableFlagsWithExit2(t *testing.T) {
	bin := filepath.Join(topology.Build(t, httpProxyPkg), "egress-http-proxy")
	conf := filepath.Join(t.TempDir(), "http.json")
	os.WriteFile(conf, routerConfig("*.example.com"), 0o644)
	for _, tc := range []proxyproc.ExitCase{
		{Name: "a negative reload interval", Args: []string{"-config", conf, "-reload-interval=-1s"}, Code: 2,
			Want: []string{"-reload-interval", "must be at least 100ms"}},
		{Name: "a negative connection cap", Args: []string{"-config", conf, "-max-connections=-5"}, Code: 2,
			Want: []string{"-max-connections", "must be from 0 to 1048576"}},
		{Name: "a CONNECT port out of range", Args: []string{"-config", conf, "-connect-ports=443,70000"}, Code: 2,
			Want: []string{"-connect-ports", "1 to 65535"}},
		{Name: "help", Args: []string{"-help"}, Code: 0, Want: []string{"-reload-interval", "-connect-ports"}},
	} {
		t.Run(tc.Name, func(t *testing.T) { tc.Check(t, bin) })
	}
}
