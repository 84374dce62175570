package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/test/topology"
)

// cnitool (pinned by go.mod's tool directive) drives the plugin from the node
// namespace: add, check, del. cnitool keeps results in /var/lib/cni; the network name
// is unique to this run so its entries are its own, and they go with the DEL.
func TestRouterThroughCnitool(t *testing.T) {
	plugins := topology.Build(t, topology.RouterPlugin, topology.Cnitool)
	tp := topology.New(t)
	name := fmt.Sprintf("egress-cnitool-%d", os.Getpid())
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, name+".conf"), routerConf("1.0.0", name, topology.Reserved.Addr()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(verb string) (string, error) {
		return tp.Exec(t, tp.Node, "env", "CNI_PATH="+plugins, "NETCONFPATH="+confDir, "CNI_IFNAME=net1",
			filepath.Join(plugins, "cnitool"), verb, name, tp.Pod.NS.Path()).Output()
	}
	out, err := run("add")
	if err != nil || !strings.Contains(out, `"sandbox"`) {
		t.Fatalf("cnitool add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = run("del") })
	if out, err := run("check"); err != nil {
		t.Fatalf("cnitool check: %v\n%s", err, out)
	}
	topology.ServeSource(t, tp.Dest, "tcp", 80)
	if got, err := topology.AskSource(tp.Client, "tcp", tp.Pod.Addr.Addr().String()+":80"); err != nil || got != topology.Reserved.Addr().String() {
		t.Fatalf("through the router: destination saw %q (%v)", got, err)
	}
	if out, err := run("del"); err != nil {
		t.Fatalf("cnitool del: %v\n%s", err, out)
	}
	assertPodClean(t, tp, tp.Pod)
}
