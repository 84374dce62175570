package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// withNodePolicy writes policy as the node's policy file and points the plugin at it
// for the rest of the test; it returns the file's path.
func withNodePolicy(t *testing.T, policy string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node-policy.json")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nodepolicy.PathEnv, path)
	return path
}

// attachment is an http-proxy attachment on the topology with the given interfaceArgs
// and ip objects and extra top-level fields (JSON, "" for none).
func attachment(interfaceArgs, ip, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0", "name": "egress-policy", "type": "egress-router", "mode": "http-proxy",
  "interfaceArgs": %s, "ip": %s, "httpProxy": {"destinations": ["*.example.com"]}%s
}`, interfaceArgs, ip, extra)
}

const (
	onExt0   = `{"master": "ext0"}`
	reserved = `{"addresses": ["192.0.2.99/24", "2001:db8:12::99/64"], "gateways": ["192.0.2.1", "2001:db8:12::1"]}`
)

// V2: what a NetworkAttachmentDefinition may ask of the node's links and addresses is
// the node policy's to decide, and some things are refused whatever it says. A refusal
// is code 7 naming the rule and the policy file, and nothing is left in the pod or
// changed on the node.
func TestNodePolicyRefusesBeforeAnythingChanges(t *testing.T) {
	for _, tc := range []struct {
		name          string
		policy        string // "" = no policy file
		interfaceArgs string
		ip            string
		rule          string
	}{
		{"passthru is refused by default", "", `{"master": "ext0", "mode": "passthru"}`, reserved, `"macvlanModes"`},
		{"passthru is refused unless listed", `{"macvlanModes": ["bridge", "private"]}`, `{"master": "ext0", "mode": "Passthru"}`, reserved, `"macvlanModes"`},
		{"a master other than the default route's is refused by default", "", `{"master": "cluster"}`, reserved, `"masters"`},
		{"a master not in the policy's list is refused", `{"masters": ["ext0"]}`, `{"master": "cluster"}`, reserved, `"masters"`},
		{"loopback is refused even when listed", `{"masters": ["lo", "ext0"]}`, `{"master": "lo"}`, reserved, `"loopback master"`},
		{"an address outside the policy's ranges is refused", `{"addressRanges": ["192.0.2.96/28"]}`, onExt0, reserved, `"addressRanges"`},
		{"the node's own address is refused", "", onExt0,
			`{"addresses": ["192.0.2.10/24"], "gateway": "192.0.2.1"}`, `"node address"`},
		{"the node's own IPv6 address is refused", "", onExt0,
			`{"addresses": ["2001:db8:12::10/64"], "gateway": "2001:db8:12::1"}`, `"node address"`},
		{"the node's address is refused even inside the policy's ranges", `{"addressRanges": ["192.0.2.0/24"]}`, onExt0,
			`{"addresses": ["192.0.2.10/24"], "gateway": "192.0.2.1"}`, `"node address"`},
		{"the node's gateway's address is refused", "", onExt0,
			`{"addresses": ["192.0.2.1/24"], "gateway": "192.0.2.254"}`, `"gateway address"`},
		{"the broadcast address of the node's subnet is refused", "", onExt0,
			`{"addresses": ["192.0.2.255/32"], "gateway": "192.0.2.1"}`, `"network or broadcast address"`},
		{"the network address of the node's subnet is refused", "", onExt0,
			`{"addresses": ["192.0.2.0/32"], "gateway": "192.0.2.1"}`, `"network or broadcast address"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			policyFile := os.Getenv(nodepolicy.PathEnv) // newPlugin's: no file
			if tc.policy != "" {
				policyFile = withNodePolicy(t, tc.policy)
			}
			ext0Before := p.tp.Exec(t, p.tp.Node, "ip", "-d", "link", "show", "ext0").Run(t)
			conf := attachment(tc.interfaceArgs, tc.ip, "")
			_, err := p.add(p.args(conf))
			wantCode(t, err, types.ErrInvalidNetworkConfig, "node policy", policyFile, tc.rule)
			p.assertNothingLeft(t)
			if after := p.tp.Exec(t, p.tp.Node, "ip", "-d", "link", "show", "ext0").Run(t); after != ext0Before {
				t.Errorf("ext0 changed:\n%s\nnow:\n%s", ext0Before, after)
			}
			if tc.rule != `"loopback master"` { // lo is down in the node: STATUS says so first
				wantCode(t, p.status(conf), types.ErrInvalidNetworkConfig, "node policy", tc.rule)
			}
			if err := p.del(p.args(conf)); err != nil {
				t.Errorf("DEL of a configuration the policy refuses: %v", err)
			}
		})
	}
}

// What the policy allows works: another master, passthru and ranges it lists.
func TestNodePolicyAllowsWhatItLists(t *testing.T) {
	p := newPlugin(t)
	withNodePolicy(t, `{"masters": ["ext0", "cluster"], "macvlanModes": ["bridge", "passthru"],
		"addressRanges": ["192.0.2.96/28", "2001:db8:12::/64"]}`)
	conf := attachment(`{"master": "cluster", "mode": "passthru"}`, reserved, "")
	r := p.mustAdd(t, conf)
	if link := p.inPod(t, "ip -d link show net1"); !strings.Contains(link, "macvlan mode passthru") {
		t.Errorf("net1:\n%s", link)
	}
	if err := p.del(p.args(withPrevResult(t, conf, r))); err != nil {
		t.Fatal(err)
	}
	p.assertNothingLeft(t)
}

// The node's policy file is the cluster admin's: one that cannot be read or parsed,
// or has a field the plugin does not know (a typo must not weaken it), stops ADD,
// CHECK and STATUS with code 7 naming it, never falls back to the defaults. DEL still
// cleans up.
func TestInvalidNodePolicyIsCode7NamingTheFile(t *testing.T) {
	for _, tc := range []struct{ name, policy, want string }{
		{"not JSON", `{"masters": [`, "JSON"},
		{"unknown field", `{"master": ["ext0"]}`, `"master"`},
		{"bad range", `{"addressRanges": ["192.0.2.0/33"]}`, "addressRanges"},
		{"unknown macvlan mode", `{"macvlanModes": ["bridge", "bridged"]}`, "bridged"},
		{"relative log directory", `{"logDir": "var/log"}`, "logDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			conf := proxyConf("1.1.0", "auto")
			r := p.mustAdd(t, conf)
			file := withNodePolicy(t, tc.policy)
			_, err := p.add(p.args(conf))
			wantCode(t, err, types.ErrInvalidNetworkConfig, file, tc.want)
			withPrev := withPrevResult(t, conf, r)
			wantCode(t, p.check(p.args(withPrev)), types.ErrInvalidNetworkConfig, file, tc.want)
			wantCode(t, p.status(conf), types.ErrInvalidNetworkConfig, file, tc.want)
			if err := p.del(p.args(withPrev)); err != nil {
				t.Fatalf("DEL with an invalid node policy: %v", err)
			}
			p.assertNothingLeft(t)
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		p := newPlugin(t)
		dir := t.TempDir() // a directory where the file should be: read fails
		t.Setenv(nodepolicy.PathEnv, dir)
		_, err := p.add(p.args(proxyConf("1.1.0", "auto")))
		wantCode(t, err, types.ErrInvalidNetworkConfig, dir)
	})
}

// A policy tightened after ADD fails CHECK, naming the rule, but must still let DEL
// clean up what ADD made.
func TestDelCleansUpWhatATightenedPolicyRefuses(t *testing.T) {
	p := newPlugin(t)
	conf := proxyConf("1.0.0", "auto")
	r := p.mustAdd(t, conf)
	logDir := t.TempDir()
	file := withNodePolicy(t, fmt.Sprintf(`{"masters": ["cluster"], "addressRanges": ["198.51.100.0/24"], "logDir": %q}`, logDir))
	logged := strings.Replace(withPrevResult(t, conf, r), `"cniVersion"`, `"log_file": "egress.log", "cniVersion"`, 1)
	wantCode(t, p.check(p.args(logged)), types.ErrInvalidNetworkConfig, file, `"masters"`, `"addressRanges"`)
	if err := p.del(p.args(logged)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	p.assertNothingLeft(t)
	logs, _ := os.ReadFile(filepath.Join(logDir, "egress-test.log"))
	if !strings.Contains(string(logs), `"level":"WARN"`) || !strings.Contains(string(logs), "node policy") {
		t.Errorf("DEL did not warn that the policy refuses the configuration:\n%s", logs)
	}
}

// V1: log_file is the NAD author's; the plugin runs as root on the node. Whatever it
// names, nothing is created or written outside the policy's log directory, the
// command succeeds, and the lines land in the log directory instead.
func TestLogFileCannotReachOutsideTheLogDirectory(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup prepares the node's files and returns log_file and the outside path
		// that must stay untouched.
		setup func(t *testing.T, logDir, outside string) (logFile, untouched string)
		// redirected: the lines go to the network's file in the log directory;
		// otherwise they go to stderr.
		redirected bool
	}{
		{"a file outside the log directory", func(t *testing.T, _, outside string) (string, string) {
			mkdir(t, filepath.Join(outside, "profile.d"))
			f := filepath.Join(outside, "profile.d", "zz-egress.sh")
			return f, f
		}, true},
		{"a directory outside that does not exist", func(t *testing.T, _, outside string) (string, string) {
			return filepath.Join(outside, "absent", "dir", "egress.log"), filepath.Join(outside, "absent")
		}, true},
		{"a path climbing out of the log directory", func(t *testing.T, logDir, outside string) (string, string) {
			mkdir(t, filepath.Join(outside, "etc"))
			f := filepath.Join(outside, "etc", "climbed")
			rel, _ := filepath.Rel(logDir, f)
			return filepath.Join(logDir, rel), f
		}, true},
		{"a symlink in the log directory pointing outside", func(t *testing.T, logDir, outside string) (string, string) {
			target := filepath.Join(outside, "target")
			if err := os.Symlink(target, filepath.Join(logDir, "link.log")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(logDir, "link.log"), target
		}, false},
		{"a FIFO in the log directory", func(t *testing.T, logDir, _ string) (string, string) {
			fifo := filepath.Join(logDir, "fifo.log")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			return fifo, ""
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t)
			logDir, outside := filepath.Join(t.TempDir(), "logs"), t.TempDir()
			mkdir(t, logDir)
			withNodePolicy(t, fmt.Sprintf(`{"logDir": %q}`, logDir))
			logFile, untouched := tc.setup(t, logDir, outside)
			conf := strings.Replace(proxyConf("1.0.0", "auto"), `"mode": "http-proxy"`,
				fmt.Sprintf(`"mode": "http-proxy", "log_file": %q, "log_level": "debug"`, logFile), 1)
			r := withinTenSeconds(t, logFile, func() error {
				r, err := p.add(p.args(conf))
				if err == nil {
					err = p.del(p.args(withPrevResult(t, conf, r)))
				}
				return err
			})
			if r != nil {
				t.Fatalf("ADD and DEL with log_file %s: %v", logFile, r)
			}
			if untouched != "" {
				if _, err := os.Lstat(untouched); err == nil {
					t.Errorf("%s was created outside the log directory", untouched)
				}
			}
			logs, _ := os.ReadFile(filepath.Join(logDir, "egress-test.log"))
			if got := strings.Contains(string(logs), `"msg":"ADD done"`); got != tc.redirected {
				t.Errorf("the network's file in the log directory has the ADD line: %v, want %v:\n%s", got, tc.redirected, logs)
			}
			if tc.redirected && !strings.Contains(string(logs), "outside the log directory") {
				t.Errorf("no warning that log_file was redirected:\n%s", logs)
			}
		})
	}
}

// The reproduction of V1: log_file a shell profile, the master a command substitution.
// ADD fails on the master, and the profile is never written.
func TestLogFileCannotPlantAShellProfile(t *testing.T) {
	p := newPlugin(t)
	logDir := t.TempDir()
	withNodePolicy(t, fmt.Sprintf(`{"logDir": %q}`, logDir))
	profile := filepath.Join(t.TempDir(), "profile.d", "zz-egress.sh")
	conf := attachment(`{"master": "$(id>PWNED)"}`, reserved, fmt.Sprintf(`"log_file": %q`, profile))
	_, err := p.add(p.args(conf))
	if err == nil {
		t.Fatal("ADD with master $(id>PWNED) succeeded")
	}
	if _, err := os.Lstat(filepath.Dir(profile)); err == nil {
		t.Errorf("%s was created", filepath.Dir(profile))
	}
}

// withinTenSeconds runs f and returns its error, failing the test if it blocks: an
// open of a FIFO with no reader blocks forever, so on timeout the FIFO is opened for
// reading to release f.
func withinTenSeconds(t *testing.T, fifo string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		<-done
		t.Fatalf("the command blocked on log_file %s", fifo)
		return nil
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
