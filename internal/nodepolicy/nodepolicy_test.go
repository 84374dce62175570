package nodepolicy

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/config"
)

func TestNoFileMeansTheDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	p, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Found || p.File != path || p.Masters != nil || p.AddressRanges != nil || p.LogDir != DefaultLogDir ||
		!slices.Equal(p.MacvlanModes, []string{"bridge", "private", "vepa"}) {
		t.Errorf("defaults: %+v", p)
	}
	if !strings.Contains(p.String(), path) || !strings.Contains(p.String(), "defaults") {
		t.Errorf("String() = %q, want the path and that the defaults apply", p)
	}
}

func TestLoadReadsThePathTheEnvironmentNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"logDir": "/var/log/elsewhere"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PathEnv, path)
	p, err := Load()
	if err != nil || !p.Found || p.File != path || p.LogDir != "/var/log/elsewhere" {
		t.Fatalf("Load() = %+v, %v", p, err)
	}
}

func TestParseReadsEveryField(t *testing.T) {
	p, err := Parse([]byte(`{"masters": ["ens4", "br-ex"], "macvlanModes": ["Bridge", "passthru"],
		"addressRanges": ["192.0.2.96/28", "2001:db8:12::/64"], "logDir": "/var/log/er"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{Masters: []string{"ens4", "br-ex"}, MacvlanModes: []string{"bridge", "passthru"},
		AddressRanges: []netip.Prefix{netip.MustParsePrefix("192.0.2.96/28"), netip.MustParsePrefix("2001:db8:12::/64")}, LogDir: "/var/log/er"}
	if !slices.Equal(p.Masters, want.Masters) || !slices.Equal(p.MacvlanModes, want.MacvlanModes) ||
		!slices.Equal(p.AddressRanges, want.AddressRanges) || p.LogDir != want.LogDir {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

func TestParseRefusesWhatWouldWeakenThePolicy(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"not JSON", `{"masters": [`, "JSON"},
		{"a second value", `{} {}`, "follows"},
		{"unknown field", `{"master": ["ens4"]}`, `"master"`},
		{"wrong type", `{"masters": "ens4"}`, "masters"},
		{"empty masters", `{"masters": []}`, "masters: list at least one"},
		{"bad link name", `{"masters": ["a/b"]}`, `masters: "a/b"`},
		{"empty link name", `{"masters": [""]}`, `masters: ""`},
		{"empty modes", `{"macvlanModes": []}`, "macvlanModes: list at least one"},
		{"unknown mode", `{"macvlanModes": ["bridged"]}`, `"bridged"`},
		{"empty ranges", `{"addressRanges": []}`, "addressRanges: list at least one"},
		{"bad range", `{"addressRanges": ["192.0.2.0/33"]}`, "addressRanges"},
		{"a host, not a range", `{"addressRanges": ["192.0.2.5/24"]}`, "192.0.2.0/24"},
		{"relative log directory", `{"logDir": "var/log"}`, "logDir"},
		{"unclean log directory", `{"logDir": "/var/log/../etc"}`, "logDir"},
		{"root as log directory", `{"logDir": "/"}`, "logDir"},
		// encoding/json matches keys case-insensitively and keeps the last value: a
		// second spelling further down would override the line a reviewer reads.
		{"a field given twice", `{"macvlanModes": ["bridge"], "macvlanModes": ["passthru"]}`, `"macvlanModes" is given twice`},
		{"a field in another case", `{"macvlanModes": ["bridge"], "MACVLANMODES": ["passthru"]}`, `"MACVLANMODES"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%s) = %v, want an error mentioning %q", tc.doc, err, tc.want)
			}
		})
	}
}

func TestReadNamesTheFileOfAnInvalidPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"log_dir": "/x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "log_dir") {
		t.Fatalf("Read = %v, want an error naming %s and the field", err, path)
	}
	if _, err := Read(t.TempDir()); err == nil {
		t.Fatal("Read of a directory succeeded")
	}
}

// node is a node like the test topology's: ext0 with 192.0.2.10/24 and
// 2001:db8:12::10/64, default routes via 192.0.2.1 and 2001:db8:12::1.
var node = Node{
	Master:            "ext0",
	DefaultRouteLinks: []string{"ext0"},
	Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("192.0.2.10/24"),
		netip.MustParsePrefix("2001:db8:12::10/64"), netip.MustParsePrefix("10.128.0.1/24")},
	Gateways: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:12::1")},
}

func loadConfig(t *testing.T, interfaceArgs, ip string) *config.Config {
	t.Helper()
	c, err := config.Load([]byte(`{"cniVersion": "1.0.0", "name": "n", "type": "egress-router", "mode": "http-proxy",
		"interfaceArgs": ` + interfaceArgs + `, "ip": ` + ip + `, "httpProxy": {"destinations": ["*"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheck(t *testing.T) {
	const reserved = `{"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1"}`
	lo := node
	lo.Master, lo.MasterIsLoopback = "lo", true
	other := node
	other.Master = "ens5"
	for _, tc := range []struct {
		name          string
		policy        string
		node          Node
		interfaceArgs string
		ip            string
		want          []string // rules broken; none = allowed
	}{
		{"the defaults allow the default-route link in bridge mode", `{}`, node, `{}`, reserved, nil},
		{"private and vepa are allowed by default", `{}`, node, `{"mode": "vepa"}`, reserved, nil},
		{"passthru is refused by default", `{}`, node, `{"mode": "passthru"}`, reserved, []string{"macvlanModes"}},
		{"passthru is allowed when listed", `{"macvlanModes": ["passthru"]}`, node, `{"mode": "passthru"}`, reserved, nil},
		{"bridge is refused when not listed", `{"macvlanModes": ["passthru"]}`, node, `{}`, reserved, []string{"macvlanModes"}},
		{"another link is refused by default", `{}`, other, `{"master": "ens5"}`, reserved, []string{"masters"}},
		{"another link is allowed when listed", `{"masters": ["ens5"]}`, other, `{"master": "ens5"}`, reserved, nil},
		{"the default-route link is refused when not listed", `{"masters": ["ens5"]}`, node, `{}`, reserved, []string{"masters"}},
		{"loopback is refused even when listed", `{"masters": ["lo"]}`, lo, `{"master": "lo"}`, reserved, []string{"loopback master"}},
		{"an unknown master is left to the link lookup", `{}`, Node{}, `{}`, reserved, nil},
		{"an address in the ranges is allowed", `{"addressRanges": ["192.0.2.96/28"]}`, node, `{}`, reserved, nil},
		{"an address outside the ranges is refused", `{"addressRanges": ["192.0.2.0/28", "2001:db8::/32"]}`, node, `{}`, reserved, []string{"addressRanges"}},
		{"the node's address is refused", `{"addressRanges": ["192.0.2.0/24"]}`, node, `{}`, `{"addresses": ["192.0.2.10/24"], "gateway": "192.0.2.1"}`, []string{"node address"}},
		{"the node's IPv6 address is refused", `{}`, node, `{}`, `{"addresses": ["2001:db8:12::10/64"]}`, []string{"node address"}},
		{"another link's address is refused", `{}`, node, `{}`, `{"addresses": ["10.128.0.1/24"]}`, []string{"node address"}},
		{"the gateway's address is refused", `{}`, node, `{}`, `{"addresses": ["192.0.2.1/24"], "gateway": "192.0.2.254"}`, []string{"gateway address"}},
		{"the broadcast address of the node's subnet is refused", `{}`, node, `{}`, `{"addresses": ["192.0.2.255/32"]}`, []string{"network or broadcast address"}},
		{"the network address of the node's subnet is refused", `{}`, node, `{}`, `{"addresses": ["192.0.2.0"]}`, []string{"network or broadcast address"}},
		{"every broken rule is named", `{"masters": ["ens5"], "addressRanges": ["198.51.100.0/24"]}`, node, `{"mode": "passthru"}`,
			`{"addresses": ["192.0.2.10/24"]}`, []string{"masters", "macvlanModes", "addressRanges", "node address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			p.File, p.Found = "/etc/test-policy.json", true
			err = p.Check(loadConfig(t, tc.interfaceArgs, tc.ip), tc.node)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want refused by %q", tc.want)
			}
			for _, rule := range append(tc.want, "/etc/test-policy.json") {
				if !strings.Contains(err.Error(), rule) {
					t.Errorf("%v\ndoes not name %q", err, rule)
				}
			}
		})
	}
}
