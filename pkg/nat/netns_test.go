package nat

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/egress-router/egress-router/pkg/redirect"
)

// requireRoot stops a namespace test that cannot run. It skips only under -short:
// a full run (CI) without root must fail, never pass by skipping.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if testing.Short() {
		t.Skip("needs root to create network namespaces")
	}
	t.Fatal("this test creates network namespaces and programs netfilter: run it as root (or skip it with -short)")
}

// newNS creates a fresh network namespace, removed when the test ends.
func newNS(t *testing.T) ns.NetNS {
	t.Helper()
	requireRoot(t)
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		netns.Close()
		if err := testutils.UnmountNS(netns); err != nil {
			t.Errorf("remove network namespace: %v", err)
		}
	})
	return netns
}

// nsName is the name `ip -n` knows the namespace by.
func nsName(netns ns.NetNS) string { return filepath.Base(netns.Path()) }

// inNS runs f inside netns and fails the test with its error.
func inNS(t *testing.T, netns ns.NetNS, f func() error) {
	t.Helper()
	if err := netns.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// command runs a command inside netns and returns its output.
func command(netns ns.NetNS, name string, args ...string) (string, error) {
	var out []byte
	err := netns.Do(func(ns.NetNS) error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mustCommand is command for steps that cannot fail in a working test.
func mustCommand(t *testing.T, netns ns.NetNS, name string, args ...string) string {
	t.Helper()
	out, err := command(netns, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mustTable parses destination lines, as the configuration would.
func mustTable(lines ...string) redirect.Table {
	tbl, err := redirect.Parse(lines)
	if err != nil {
		panic(err)
	}
	return tbl
}

func addrs(list ...string) []netip.Addr {
	out := make([]netip.Addr, len(list))
	for i, s := range list {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}
