package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/egress-router/egress-router/internal/nodepolicy"
	"github.com/egress-router/egress-router/test/topology"
)

// withInvalidLine is conf with a redirect line the grammar refuses.
func withInvalidLine(conf string) string {
	return strings.Replace(conf, `"80 tcp 203.0.113.25"`, `"80 tcpx 203.0.113.25"`, 1)
}

// DEL with a configuration that no longer validates (edited after ADD, or an upgrade
// that tightened a check) still removes everything ADD made, over both backends, and
// says in the log that the configuration was invalid.
func TestDelWithAnInvalidConfigRemovesWhatAddMade(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			p := newPlugin(t)
			p.mustAdd(t, redirectConf("1.0.0", backend))
			logDir := t.TempDir()
			withNodePolicy(t, fmt.Sprintf(`{"logDir": %q}`, logDir))
			logFile := filepath.Join(logDir, "egress-router.log")
			conf := strings.Replace(withInvalidLine(redirectConf("1.0.0", backend)),
				`"type": "egress-router",`, fmt.Sprintf(`"type": "egress-router", "log_file": %q,`, logFile), 1)
			if err := p.del(p.args(conf)); err != nil {
				t.Fatalf("DEL with an invalid configuration: %v", err)
			}
			p.assertNothingLeft(t)
			logged, err := os.ReadFile(logFile)
			if err != nil || !bytes.Contains(logged, []byte(`"level":"WARN"`)) || !bytes.Contains(logged, []byte(`tcpx`)) {
				t.Errorf("want a warning naming the invalid line in the log: %v\n%s", err, logged)
			}
		})
	}
}

// The binary's DEL takes any configuration, even one skel cannot decode, and succeeds
// when there is nothing to remove (a namespace with no attachment, or no namespace),
// saying on stderr why the configuration was not used. ADD still refuses it.
func TestDelThroughTheBinaryTakesAnyConfiguration(t *testing.T) {
	topology.RequireRoot(t)
	plugin := filepath.Join(topology.Build(t, topology.RouterPlugin), "egress-router")
	tp := topology.New(t)
	noPolicy := nodepolicy.PathEnv + "=" + filepath.Join(t.TempDir(), "no-node-policy.json")
	for _, tc := range []struct{ name, conf, why string }{
		{"not JSON", "this is not JSON {", "not valid JSON"},
		{"no name", `{"cniVersion": "1.0.0", "type": "egress-router"}`, "addresses"},
		{"unknown cniVersion", `{"cniVersion": "9.9.9", "name": "x", "type": "egress-router"}`, "addresses"},
		{"invalid line", withInvalidLine(redirectConf("1.0.0", "auto")), "tcpx"},
	} {
		for _, netns := range []string{tp.Pod.NS.Path(), "", filepath.Join(t.TempDir(), "gone")} {
			t.Run(tc.name+" netns="+netns, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				err := tp.Node.Do(func(ns.NetNS) error {
					cmd := exec.Command(plugin)
					cmd.Env = []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=ctr-del-test", "CNI_NETNS=" + netns,
						"CNI_IFNAME=net1", "CNI_PATH=" + filepath.Dir(plugin), noPolicy}
					cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(tc.conf), &stdout, &stderr
					return cmd.Run()
				})
				if err != nil {
					t.Fatalf("DEL: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("DEL wrote to stdout: %s", stdout.String())
				}
				if !strings.Contains(stderr.String(), "does not validate") || !strings.Contains(stderr.String(), tc.why) {
					t.Errorf("want a warning saying why (%q) on stderr, got:\n%s", tc.why, stderr.String())
				}
			})
		}
	}
}

// DEL acts in CNI_NETNS. When that is the plugin's own namespace (a runtime's mistake,
// or a path such as /proc/1/ns/net), removing CNI_IFNAME and the attachment's rules
// there would remove the node's own link: DEL refuses, as skel does (code 8), and
// before it touches anything, which skel does only after the plugin's DEL has run.
func TestDelRefusesThePluginsOwnNamespace(t *testing.T) {
	p := newPlugin(t)
	env := map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "ctr-del-own-ns",
		"CNI_NETNS": p.tp.Node.Path(), "CNI_IFNAME": topology.Master, "CNI_PATH": "/nonexistent"}
	var status int
	err := p.tp.Node.Do(func(ns.NetNS) error {
		status = runDel(func(k string) string { return env[k] }, strings.NewReader(redirectConf("1.0.0", "auto")))
		_, err := netlink.LinkByName(topology.Master)
		return err
	})
	if err != nil {
		t.Fatalf("DEL in the node's own namespace removed its link %s: %v", topology.Master, err)
	}
	if status == 0 {
		t.Errorf("DEL in the plugin's own namespace succeeded; want code %d", types.ErrInvalidNetNS)
	}
}

// ADD likewise: in the plugin's own namespace it would give the node a macvlan with
// the reserved address, rules and netfilter state, which skel's check after ADD then
// reports but leaves in place.
func TestAddRefusesThePluginsOwnNamespace(t *testing.T) {
	p := newPlugin(t)
	args := p.args(proxyConf("1.0.0", "auto"))
	args.Netns = p.tp.Node.Path()
	_, err := p.add(args)
	if lerr := p.tp.Node.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("net1"); err == nil {
			return errors.New("net1 was created in the node's namespace")
		}
		return nil
	}); lerr != nil {
		t.Error(lerr)
	}
	wantCode(t, err, types.ErrInvalidNetNS, "own network namespace")
}
