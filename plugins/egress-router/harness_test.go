package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/egress-router/egress-router/internal/nodepolicy"
	"github.com/egress-router/egress-router/test/topology"
)

// TestMain removes the binaries the tests built (topology.Build) once they have run.
func TestMain(m *testing.M) { topology.Main(m) }

var specVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// redirectConf is a dual-stack redirect attachment on the topology's master.
func redirectConf(version, backend string) string {
	return fmt.Sprintf(`{
  "cniVersion": %q, "name": "egress-test", "type": "egress-router", "backend": %q,
  "interfaceArgs": {"master": %q},
  "ip": {
    "addresses": ["192.0.2.99/24", "2001:db8:12::99/64"],
    "gateways": ["192.0.2.1", "2001:db8:12::1"],
    "destinations": ["80 tcp 203.0.113.25", "8080 tcp 203.0.113.26 80", "53 udp 203.0.113.53", "9 sctp 203.0.113.9", "443 tcp 2001:db8:20::25", "203.0.113.27"]
  }
}`, version, backend, topology.Master)
}

// proxyConf is a dual-stack http-proxy attachment: addresses, source rules and the
// input guard, no NAT.
func proxyConf(version, backend string) string {
	return fmt.Sprintf(`{
  "cniVersion": %q, "name": "egress-test", "type": "egress-router", "mode": "http-proxy", "backend": %q,
  "interfaceArgs": {"master": %q, "mode": "Private", "mtu": "1400"},
  "ip": {"addresses": ["192.0.2.99/24", "2001:db8:12::99/64"], "gateways": ["192.0.2.1", "2001:db8:12::1"]},
  "httpProxy": {"destinations": ["*.example.com"]}
}`, version, backend, topology.Master)
}

// plugin drives the plugin's commands in-process, as a runtime in the topology's node
// namespace would call the binary.
type plugin struct {
	tp  *topology.Topology
	pod *topology.Pod
}

// newPlugin builds the topology. The plugin reads no node policy (the defaults) unless
// the test writes one (withNodePolicy), whatever the machine has at the real path.
func newPlugin(t *testing.T) *plugin {
	t.Setenv(nodepolicy.PathEnv, filepath.Join(t.TempDir(), "no-node-policy.json"))
	tp := topology.New(t)
	return &plugin{tp: tp, pod: tp.Pod}
}

func (p *plugin) args(conf string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "ctr-" + p.pod.Bridge, Netns: p.pod.NS.Path(), IfName: "net1", StdinData: []byte(conf)}
}

func (p *plugin) add(args *skel.CmdArgs) (*current.Result, error) {
	var result types.Result
	err := p.tp.Node.Do(func(ns.NetNS) (err error) {
		result, _, err = testutils.CmdAddWithArgs(args, func() error { return cmdAdd(args) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(result)
}

func (p *plugin) mustAdd(t *testing.T, conf string) *current.Result {
	t.Helper()
	r, err := p.add(p.args(conf))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	return r
}

func (p *plugin) check(args *skel.CmdArgs) error {
	return p.tp.Node.Do(func(ns.NetNS) error {
		return testutils.CmdCheckWithArgs(args, func() error { return cmdCheck(args) })
	})
}

func (p *plugin) del(args *skel.CmdArgs) error {
	return p.tp.Node.Do(func(ns.NetNS) error {
		return testutils.CmdDelWithArgs(args, func() error { return cmdDel(args) })
	})
}

func (p *plugin) status(conf string) error {
	return p.tp.Node.Do(func(ns.NetNS) error {
		return testutils.CmdStatus(func() error { return cmdStatus(&skel.CmdArgs{StdinData: []byte(conf)}) })
	})
}

// withPrevResult returns conf with prevResult set to r, rendered in conf's version, as a
// runtime passes it to CHECK and DEL.
func withPrevResult(t *testing.T, conf string, r *current.Result) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(conf), &doc); err != nil {
		t.Fatal(err)
	}
	versioned, err := r.GetAsVersion(doc["cniVersion"].(string))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(versioned)
	var prev map[string]any
	_ = json.Unmarshal(raw, &prev)
	doc["prevResult"] = prev
	out, _ := json.Marshal(doc)
	return string(out)
}

// timeWaitSysctl is the conntrack setting ADD shortens in the pod.
const timeWaitSysctl = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"

// inPod runs command in the pod namespace and returns its output.
func (p *plugin) inPod(t *testing.T, command string) string {
	t.Helper()
	f := strings.Fields(command)
	return p.tp.Exec(t, p.pod.NS, f[0], f[1:]...).Run(t)
}

// wantCode asserts err is a CNI error with code whose text contains every want.
func wantCode(t *testing.T, err error, code uint, want ...string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("want CNI error code %d, got %v", code, err)
	}
	if e.Code != code {
		t.Fatalf("want code %d, got %d: %v", code, e.Code, e)
	}
	for _, w := range want {
		if !strings.Contains(e.Error(), w) {
			t.Errorf("error %q does not mention %q", e.Error(), w)
		}
	}
}

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}
