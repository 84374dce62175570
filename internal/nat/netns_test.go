package nat

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/redirect"
)

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
