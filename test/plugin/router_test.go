package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/egress-router/egress-router/internal/nodepolicy"
	"github.com/egress-router/egress-router/test/topology"
)

// routerConf is a redirect attachment for the topology, reserved address reserved.
func routerConf(version, name string, reserved netip.Addr) []byte {
	return fmt.Appendf(nil, `{
  "cniVersion": %q, "name": %q, "type": "egress-router",
  "interfaceArgs": {"master": %q},
  "ip": {"addresses": ["%s/24"], "gateway": "192.0.2.1",
         "destinations": ["80 tcp 203.0.113.25", "8080 tcp 203.0.113.26 80"]}
}`, version, name, topology.Master, reserved)
}

// The plugin binary through libcni, as a runtime calls it: ADD, CHECK with the cached
// result, traffic through the router, STATUS, DEL twice, nothing left.
func TestRouterThroughLibcni(t *testing.T) {
	plugins := topology.Build(t, topology.RouterPlugin)
	for _, version := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			tp := topology.New(t)
			cni := tp.CNI(t, plugins)
			a := cni.Attach(t, tp.Pod, routerConf(version, "egress-libcni", topology.Reserved.Addr()), "net1")
			if _, err := cni.Add(a); err != nil {
				t.Fatalf("ADD %s: %v", a, err)
			}
			if err := cni.Check(a); err != nil {
				t.Fatalf("CHECK: %v", err)
			}
			if version == "1.1.0" {
				if err := cni.Status(a); err != nil {
					t.Fatalf("STATUS: %v", err)
				}
			}
			topology.ServeSource(t, tp.Dest, "tcp", 80)
			if got, err := topology.AskSource(tp.Client, "tcp", tp.Pod.Addr.Addr().String()+":8080"); err != nil || got != topology.Reserved.Addr().String() {
				t.Fatalf("through the router: destination saw %q (%v)", got, err)
			}
			for range 2 {
				if err := cni.Del(a); err != nil {
					t.Fatalf("DEL: %v", err)
				}
			}
			assertPodClean(t, tp, tp.Pod)
		})
	}
}

// 20 router pods on the same master, added in parallel, then deleted in parallel.
func TestTwentyParallelAddsThenDels(t *testing.T) {
	const n = 20
	plugins := topology.Build(t, topology.RouterPlugin)
	tp := topology.New(t)
	cni := tp.CNI(t, plugins)
	pods := []*topology.Pod{tp.Pod}
	for len(pods) < n {
		pods = append(pods, tp.AddPod(t))
	}
	attachments := make([]*topology.Attachment, n)
	for i, pod := range pods {
		reserved := netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)})
		attachments[i] = cni.Attach(t, pod, routerConf("1.0.0", "egress-parallel", reserved), "net1")
	}
	parallel := func(what string, op func(*topology.Attachment) error) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, a := range attachments {
			wg.Go(func() { errs[i] = op(a) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s #%d: %v", what, i, err)
			}
		}
	}
	parallel("ADD", func(a *topology.Attachment) error { _, err := cni.Add(a); return err })
	parallel("CHECK", cni.Check)
	parallel("DEL", cni.Del)
	for _, pod := range pods {
		assertPodClean(t, tp, pod)
	}
}

// The configuration the OpenShift Cluster Network Operator renders (cniVersion 0.4.0,
// no interfaceArgs, UPPERCASE protocols, fallbackIP, log_file, log_level) works
// unchanged on a node without a policy file, but for a destination the topology serves
// and a network name of this run's. Its log_file, /tmp/egress-router-log, is outside
// the default log directory: the lines go to /var/log/egress-router/<name>.log.
func TestCNORenderedConfigWorksEndToEnd(t *testing.T) {
	raw, err := os.ReadFile("../../internal/config/testdata/cno-rendered.json")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("egress-router-cni-nad-%d", os.Getpid())
	logFile := removedAfter(t, nodepolicy.DefaultLogDir, name+".log")
	conf := strings.NewReplacer("10.0.0.99", "203.0.113.53", `"egress-router-cni-nad"`, strconv.Quote(name)).Replace(string(raw))
	tp := topology.New(t)
	cni := tp.CNI(t, topology.Build(t, topology.RouterPlugin))
	a := cni.Attach(t, tp.Pod, []byte(conf), "net1")
	if _, err := cni.Add(a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := cni.Check(a); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	topology.ServeSource(t, tp.Dest, "udp", 80)
	topology.ServeSource(t, tp.Dest, "tcp", 80)
	topology.ServeSource(t, tp.Dest, "tcp", 443)
	topology.ServeSource(t, tp.Dest, "tcp", 7777)
	pod := tp.Pod.Addr.Addr().String()
	for _, c := range []struct{ network, port string }{{"udp", "80"}, {"tcp", "8080"}, {"tcp", "8443"}, {"tcp", "7777"}} {
		if got, err := topology.AskSource(tp.Client, c.network, pod+":"+c.port); err != nil || got != topology.Reserved.Addr().String() {
			t.Errorf("%s %s through the router: destination saw %q (%v)", c.network, c.port, got, err)
		}
	}
	if err := cni.Del(a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	assertPodClean(t, tp, tp.Pod)
	logs, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logs), `"level":"DEBUG"`) || !strings.Contains(string(logs), `"msg":"ADD done"`) ||
		!strings.Contains(string(logs), `"log_file":"/tmp/egress-router-log"`) {
		t.Errorf("%s: %v\n%s", logFile, err, logs)
	}
}

// removedAfter returns dir/name and removes that file when the test ends, and dir
// too if the test created it (if it is left empty).
func removedAfter(t *testing.T, dir, name string) string {
	_, statErr := os.Stat(dir)
	t.Cleanup(func() {
		os.Remove(filepath.Join(dir, name))
		if statErr != nil {
			os.Remove(dir)
		}
	})
	return filepath.Join(dir, name)
}

// The plugin binary reads the node policy a runtime's environment points it at:
// refusals name the file, and log_file stays in the policy's log directory.
func TestNodePolicyGovernsThePluginBinary(t *testing.T) {
	plugins := topology.Build(t, topology.RouterPlugin)
	tp := topology.New(t)
	cni := tp.CNI(t, plugins)
	logDir := t.TempDir()
	policy := filepath.Join(t.TempDir(), nodepolicy.FileName)
	if err := os.WriteFile(policy, fmt.Appendf(nil, `{"masters": ["ext0"], "addressRanges": ["192.0.2.64/26"], "logDir": %q}`, logDir), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nodepolicy.PathEnv, policy)
	outside := filepath.Join(t.TempDir(), "profile.d")
	withLog := func(conf []byte, logFile string) []byte {
		return bytes.Replace(conf, []byte(`"type": "egress-router",`), fmt.Appendf(nil, `"type": "egress-router", "log_file": %q,`, logFile), 1)
	}

	refused := cni.Attach(t, tp.Pod, withLog(routerConf("1.0.0", "egress-refused", netip.MustParseAddr("192.0.2.10")), outside+"/zz.sh"), "net1")
	_, err := cni.Add(refused)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || !strings.Contains(cniErr.Error(), policy) ||
		!strings.Contains(cniErr.Error(), `"node address"`) || !strings.Contains(cniErr.Error(), `"addressRanges"`) {
		t.Fatalf("ADD of the node's address: %v, want code 7 naming %s and the rules", err, policy)
	}
	if err := cni.Del(refused); err != nil {
		t.Fatalf("DEL of a refused attachment: %v", err)
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Errorf("log_file created %s", outside)
	}
	if logs, _ := os.ReadFile(filepath.Join(logDir, "egress-refused.log")); !strings.Contains(string(logs), "refused by the node policy") {
		t.Errorf("the refusal is not in the log directory:\n%s", logs)
	}

	allowed := cni.Attach(t, tp.Pod, withLog(routerConf("1.0.0", "egress-allowed", topology.Reserved.Addr()), filepath.Join(logDir, "allowed.log")), "net1")
	if _, err := cni.Add(allowed); err != nil {
		t.Fatalf("ADD within the policy: %v", err)
	}
	if err := cni.Del(allowed); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if logs, _ := os.ReadFile(filepath.Join(logDir, "allowed.log")); !strings.Contains(string(logs), `"msg":"ADD done"`) {
		t.Errorf("allowed.log:\n%s", logs)
	}
}

// assertPodClean: no net1, no source rule, no NAT state in the pod.
func assertPodClean(t *testing.T, tp *topology.Topology, pod *topology.Pod) {
	t.Helper()
	if out, err := tp.Exec(t, pod.NS, "ip", "link", "show", "net1").Output(); err == nil {
		t.Errorf("net1 left in %s:\n%s", pod.NS.Path(), out)
	}
	if rules := tp.Exec(t, pod.NS, "ip", "rule", "show").Run(t); strings.Contains(rules, "192.0.2.") {
		t.Errorf("rule left in %s:\n%s", pod.NS.Path(), rules)
	}
	if rs := strings.ToLower(tp.Exec(t, pod.NS, "nft", "list", "ruleset").Run(t)); strings.Contains(rs, "egr") {
		t.Errorf("NAT state left in %s:\n%s", pod.NS.Path(), rs)
	}
}
