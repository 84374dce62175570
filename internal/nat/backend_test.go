package nat

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"

	"github.com/egress-router/egress-router/test/topology"
)

// backendUnderTest pairs a backend with the test's own view of the kernel: state
// and tampering go through the backend's tools (nft, iptables-save, iptables) or the
// nftables library, never through the code under test, so the tests do not grade the
// backend with its own parser.
type backendUnderTest struct {
	Backend
	name string
	// setup, when set, prepares the test process for the backend.
	setup func(t *testing.T)
	// state lists the egress-router state in the netns, one line per chain or rule.
	state func(netns ns.NetNS) ([]string, error)
	// golden is state after Apply(sampleAttachment, sampleRuleset); {hash} stands for
	// the attachment's hash.
	golden string
	// guardGolden is state after Apply(sampleAttachment, guardRuleset).
	guardGolden string
	// deleteFirstDNAT deletes the attachment's first DNAT rule (80/tcp in the sample).
	deleteFirstDNAT func(netns ns.NetNS, a Attachment) error
	// perPortDNAT matches each per-port DNAT rule in state.
	perPortDNAT *regexp.Regexp
	// flushInputGuard empties the chain of the attachment's input guard (IPv4's, at
	// least).
	flushInputGuard func(netns ns.NetNS, a Attachment) error
	// addForeignRule adds "tcp dport 22 accept" to the attachment's DNAT chain.
	addForeignRule func(netns ns.NetNS, a Attachment) error
	// stateMissing is what Check says when the attachment has no state at all, and
	// dnatChainMissing when it has no DNAT chain.
	stateMissing, dnatChainMissing string
}

var backends = []backendUnderTest{nftablesUnderTest, iptablesUnderTest, withLegacyIptables(iptablesUnderTest)}

var nftablesUnderTest = backendUnderTest{
	Backend: nftablesBackend{},
	name:    "nftables",
	state:   nftState,
	golden: `table inet egress_router_{hash} {
	map redirect4 {
		type inet_proto . inet_service : ipv4_addr . inet_service
		elements = { sctp . 9999 : 203.0.113.30 . 9999,
			     udp . 53 : 203.0.113.53 . 53,
			     tcp . 80 : 203.0.113.25 . 80,
			     tcp . 8080 : 203.0.113.26 . 80 }
	}
	map redirect6 {
		type inet_proto . inet_service : ipv6_addr . inet_service
		elements = { tcp . 443 : 2001:db8:1::25 . 8443,
			     udp . 5353 : 2001:db8:1::53 . 53 }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		meta nfproto ipv4 iifname != "net1" dnat ip to meta l4proto . th dport map @redirect4 comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 iifname != "net1" dnat ip to 203.0.113.27 comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname != "net1" dnat ip6 to meta l4proto . th dport map @redirect6 comment "egress-router container=4a1f0c3b9e2d if=net1"
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		meta nfproto ipv4 oifname "net1" snat ip to 192.0.2.99 comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 oifname "net1" snat ip6 to 2001:db8:12::99 comment "egress-router container=4a1f0c3b9e2d if=net1"
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		meta nfproto ipv4 ct state established,related accept comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 oifname "net1" ct status dnat accept comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 ct status ! dnat drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 ct state established,related accept comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 oifname "net1" ct status dnat accept comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 ct status ! dnat drop comment "egress-router container=4a1f0c3b9e2d if=net1"
	}
	chain input {
		type filter hook input priority filter; policy accept;
		meta nfproto ipv4 iifname "net1" meta l4proto tcp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 iifname "net1" meta l4proto udp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 iifname "net1" meta l4proto sctp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto tcp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto udp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto sctp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
	}
}`,
	guardGolden: `table inet egress_router_{hash} {
	chain input {
		type filter hook input priority filter; policy accept;
		meta nfproto ipv4 iifname "net1" meta l4proto tcp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 iifname "net1" meta l4proto udp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv4 iifname "net1" meta l4proto sctp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto tcp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto udp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
		meta nfproto ipv6 iifname "net1" meta l4proto sctp ct state new drop comment "egress-router container=4a1f0c3b9e2d if=net1"
	}
}`,
	deleteFirstDNAT: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "nft", "delete", "element", "inet", "egress_router_"+a.hash(), "redirect4", "{ tcp . 80 }")
		return err
	},
	perPortDNAT: regexp.MustCompile(`(tcp|udp|sctp) \. \d+ : [0-9a-f.:]+ \. \d+`),
	flushInputGuard: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "nft", "flush", "chain", "inet", "egress_router_"+a.hash(), "input")
		return err
	},
	addForeignRule: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "nft", "add", "rule", "inet", "egress_router_"+a.hash(), "prerouting", "tcp", "dport", "22", "accept")
		return err
	},
	stateMissing:     "table egress_router_{hash} is missing",
	dnatChainMissing: "chain prerouting is missing",
}

var iptablesUnderTest = backendUnderTest{
	Backend: iptablesBackend{},
	name:    "iptables",
	state:   iptablesState,
	golden: `iptables-save *filter
:EGR-{hash}-FWD - [0:0]
:EGR-{hash}-IN - [0:0]
-A INPUT -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-IN
-A FORWARD -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-FWD
-A EGR-{hash}-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A EGR-{hash}-FWD -o net1 -m conntrack --ctstate DNAT -j ACCEPT
-A EGR-{hash}-FWD -m conntrack ! --ctstate DNAT -j DROP
-A EGR-{hash}-IN -i net1 -p tcp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p udp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p sctp -m conntrack --ctstate NEW -j DROP
iptables-save *nat
:EGR-{hash}-DNAT - [0:0]
:EGR-{hash}-SNAT - [0:0]
-A PREROUTING -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-DNAT
-A POSTROUTING -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-SNAT
-A EGR-{hash}-DNAT ! -i net1 -p tcp -m tcp --dport 80 -j DNAT --to-destination 203.0.113.25:80
-A EGR-{hash}-DNAT ! -i net1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 203.0.113.26:80
-A EGR-{hash}-DNAT ! -i net1 -p udp -m udp --dport 53 -j DNAT --to-destination 203.0.113.53:53
-A EGR-{hash}-DNAT ! -i net1 -p sctp -m sctp --dport 9999 -j DNAT --to-destination 203.0.113.30:9999
-A EGR-{hash}-DNAT ! -i net1 -j DNAT --to-destination 203.0.113.27
-A EGR-{hash}-SNAT -o net1 -j SNAT --to-source 192.0.2.99
ip6tables-save *filter
:EGR-{hash}-FWD - [0:0]
:EGR-{hash}-IN - [0:0]
-A INPUT -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-IN
-A FORWARD -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-FWD
-A EGR-{hash}-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A EGR-{hash}-FWD -o net1 -m conntrack --ctstate DNAT -j ACCEPT
-A EGR-{hash}-FWD -m conntrack ! --ctstate DNAT -j DROP
-A EGR-{hash}-IN -i net1 -p tcp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p udp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p sctp -m conntrack --ctstate NEW -j DROP
ip6tables-save *nat
:EGR-{hash}-DNAT - [0:0]
:EGR-{hash}-SNAT - [0:0]
-A PREROUTING -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-DNAT
-A POSTROUTING -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-SNAT
-A EGR-{hash}-DNAT ! -i net1 -p tcp -m tcp --dport 443 -j DNAT --to-destination [2001:db8:1::25]:8443
-A EGR-{hash}-DNAT ! -i net1 -p udp -m udp --dport 5353 -j DNAT --to-destination [2001:db8:1::53]:53
-A EGR-{hash}-SNAT -o net1 -j SNAT --to-source 2001:db8:12::99`,
	guardGolden: `iptables-save *filter
:EGR-{hash}-IN - [0:0]
-A INPUT -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-IN
-A EGR-{hash}-IN -i net1 -p tcp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p udp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p sctp -m conntrack --ctstate NEW -j DROP
ip6tables-save *filter
:EGR-{hash}-IN - [0:0]
-A INPUT -m comment --comment "egress-router container=4a1f0c3b9e2d if=net1" -j EGR-{hash}-IN
-A EGR-{hash}-IN -i net1 -p tcp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p udp -m conntrack --ctstate NEW -j DROP
-A EGR-{hash}-IN -i net1 -p sctp -m conntrack --ctstate NEW -j DROP`,
	deleteFirstDNAT: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "iptables", "-t", "nat", "-D", "EGR-"+a.hash()+"-DNAT", "1")
		return err
	},
	perPortDNAT: regexp.MustCompile(`--dport \d+ .*-j DNAT --to-destination `),
	flushInputGuard: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "iptables", "-F", "EGR-"+a.hash()+"-IN")
		return err
	},
	addForeignRule: func(netns ns.NetNS, a Attachment) error {
		_, err := command(netns, "iptables", "-t", "nat", "-A", "EGR-"+a.hash()+"-DNAT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
		return err
	},
	stateMissing:     "IPv4 chain EGR-{hash}-DNAT is missing",
	dnatChainMissing: "IPv4 chain EGR-{hash}-DNAT is missing",
}

// withLegacyIptables runs b with iptables-legacy as the node's iptables, the variant
// `iptables` on PATH does not select here, so both are known to work.
func withLegacyIptables(b backendUnderTest) backendUnderTest {
	b.name = "iptables-legacy"
	b.setup = func(t *testing.T) {
		dir := t.TempDir()
		for _, tool := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
			legacy, err := exec.LookPath(strings.Replace(tool, "tables", "tables-legacy", 1))
			if err != nil {
				t.Fatalf("the legacy iptables tools are part of Debian's iptables package: %v", err)
			}
			if err := os.Symlink(legacy, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return b
}

// nftState is `nft list ruleset` without blank lines: in a test namespace every
// table in it is one egress-router wrote.
func nftState(netns ns.NetNS) ([]string, error) {
	out, err := command(netns, "nft", "list", "ruleset")
	return nonBlankLines(out), err
}

// iptablesState is the lines of iptables-save and ip6tables-save that name an
// egress-router chain, each group under a "<tool> *<table>" header.
func iptablesState(netns ns.NetNS) ([]string, error) {
	var state []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := command(netns, save)
		if err != nil {
			return nil, err
		}
		for _, table := range strings.Split(out, "\n*")[1:] {
			lines := strings.Split(table, "\n")
			ours := slices.DeleteFunc(lines[1:], func(l string) bool { return !strings.Contains(l, "EGR-") })
			if len(ours) > 0 {
				state = append(append(state, save+" *"+lines[0]), ours...)
			}
		}
	}
	return state, nil
}

func nonBlankLines(s string) []string {
	return slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
}

var sampleAttachment = Attachment{ContainerID: "4a1f0c3b9e2d", IfName: "net1"}

// sampleRuleset has every kind of line: tcp, udp and sctp, a remapped port, a
// fallback, and both families. Each call returns a fresh copy to modify.
func sampleRuleset() Ruleset {
	return Ruleset{
		Egress:          "net1",
		SourcePerFamily: addrs("192.0.2.99", "2001:db8:12::99"),
		Redirect: mustTable(
			"80 tcp 203.0.113.25",
			"8080 tcp 203.0.113.26 80",
			"53 udp 203.0.113.53",
			"9999 sctp 203.0.113.30",
			"443 tcp 2001:db8:1::25 8443",
			"5353 udp 2001:db8:1::53 53",
			"203.0.113.27",
		),
	}
}

// guardRuleset is what the proxy modes program: no redirect, so the input guard
// alone, in both families.
func guardRuleset() Ruleset {
	return Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.99", "2001:db8:12::99")}
}

// forEachBackend runs test once per backend, each in a fresh network namespace.
func forEachBackend(t *testing.T, test func(t *testing.T, b backendUnderTest, netns ns.NetNS)) {
	runBackends(t, func(t *testing.T, b backendUnderTest) {
		netns := topology.NewNS(t)
		inNS(t, netns, b.Available)
		test(t, b, netns)
	})
}

// runBackends runs test once per backend, set up, as a subtest named after it.
func runBackends(t *testing.T, test func(t *testing.T, b backendUnderTest)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.setup != nil {
				b.setup(t)
			}
			test(t, b)
		})
	}
}

func (b backendUnderTest) mustState(t *testing.T, netns ns.NetNS) []string {
	t.Helper()
	state, err := b.state(netns)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func (b backendUnderTest) wantGolden(t *testing.T, netns ns.NetNS, a Attachment) {
	t.Helper()
	want := strings.Split(strings.ReplaceAll(b.golden, "{hash}", a.hash()), "\n")
	if got := b.mustState(t, netns); !slices.Equal(got, want) {
		t.Errorf("live state:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestApplyWritesTheRuleset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, sampleRuleset()) })
		b.wantGolden(t, netns, sampleAttachment)
		inNS(t, netns, func() error { return b.Check(sampleAttachment, sampleRuleset()) })
	})
}

// The proxy modes' ruleset, written fresh or over a redirect mode's copy, leaves the
// input guard and nothing else.
func TestApplyWithoutRedirectWritesTheInputGuardAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, guardRuleset()) })
		over := topology.NewNS(t)
		inNS(t, over, func() error { return b.Apply(sampleAttachment, sampleRuleset()) })
		inNS(t, over, func() error { return b.Apply(sampleAttachment, guardRuleset()) })
		if got, want := b.mustState(t, over), b.mustState(t, netns); !slices.Equal(got, want) {
			t.Errorf("state written over a redirect copy:\n%s\nwant, as written fresh:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		want := strings.Split(strings.ReplaceAll(b.guardGolden, "{hash}", sampleAttachment.hash()), "\n")
		if got := b.mustState(t, netns); !slices.Equal(got, want) {
			t.Errorf("live state:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		inNS(t, netns, func() error { return b.Check(sampleAttachment, guardRuleset()) })
		// The redirect chains are not there, and Check against a redirect ruleset
		// says so.
		err := netns.Do(func(ns.NetNS) error { return b.Check(sampleAttachment, sampleRuleset()) })
		if want := strings.ReplaceAll(b.dnatChainMissing, "{hash}", sampleAttachment.hash()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check against the redirect ruleset = %v, want an error containing %q", err, want)
		}
	})
}

func TestApplyTwiceDoesNotDuplicate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		for range 2 {
			inNS(t, netns, func() error { return b.Apply(sampleAttachment, sampleRuleset()) })
		}
		b.wantGolden(t, netns, sampleAttachment)
		inNS(t, netns, func() error { return b.Check(sampleAttachment, sampleRuleset()) })
	})
}

// An ADD over an older copy with a different configuration (new source, other
// destinations, IPv6 dropped) leaves exactly what a first ADD would.
func TestApplyReplacesAnOlderRuleset(t *testing.T) {
	changed := Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.98"), Redirect: mustTable("443 tcp 203.0.113.40", "5353 udp 203.0.113.53 53")}
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, sampleRuleset()) })
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, changed) })
		replaced := b.mustState(t, netns)

		fresh := topology.NewNS(t)
		inNS(t, fresh, func() error { return b.Apply(sampleAttachment, changed) })
		if want := b.mustState(t, fresh); !slices.Equal(replaced, want) {
			t.Errorf("state after replacing:\n%s\nwant, as written fresh:\n%s", strings.Join(replaced, "\n"), strings.Join(want, "\n"))
		}
		inNS(t, netns, func() error { return b.Check(sampleAttachment, changed) })
		err := netns.Do(func(ns.NetNS) error { return b.Check(sampleAttachment, sampleRuleset()) })
		if err == nil || !strings.Contains(err.Error(), "DNAT rule for 80/tcp -> 203.0.113.25:80 is missing") {
			t.Errorf("Check against the old ruleset = %v, want the old rules reported missing", err)
		}
	})
}

func TestCheckNamesWhatDrifted(t *testing.T) {
	a := sampleAttachment
	tests := []struct {
		name   string
		tamper func(b backendUnderTest, netns ns.NetNS) error
		want   func(b backendUnderTest) string
	}{
		{
			name:   "deleted DNAT rule",
			tamper: func(b backendUnderTest, netns ns.NetNS) error { return b.deleteFirstDNAT(netns, a) },
			want:   constant("DNAT rule for 80/tcp -> 203.0.113.25:80 is missing"),
		},
		{
			name:   "rule added by someone else",
			tamper: func(b backendUnderTest, netns ns.NetNS) error { return b.addForeignRule(netns, a) },
			want:   constant("unexpected prerouting accept rule for 22/tcp"),
		},
		{
			name: "changed SNAT source",
			tamper: func(b backendUnderTest, netns ns.NetNS) error {
				rs := sampleRuleset()
				rs.SourcePerFamily = addrs("192.0.2.98", "2001:db8:12::99")
				return netns.Do(func(ns.NetNS) error { return b.Apply(a, rs) })
			},
			want: constant("SNAT source for IPv4 traffic is 192.0.2.98, want 192.0.2.99"),
		},
		{
			name: "changed DNAT target",
			tamper: func(b backendUnderTest, netns ns.NetNS) error {
				rs := sampleRuleset()
				rs.Redirect.Rules[0].Target = netip.MustParseAddr("203.0.113.99")
				return netns.Do(func(ns.NetNS) error { return b.Apply(a, rs) })
			},
			want: constant("DNAT target for 80/tcp is 203.0.113.99:80, want 203.0.113.25:80"),
		},
		{
			name:   "input guard emptied",
			tamper: func(b backendUnderTest, netns ns.NetNS) error { return b.flushInputGuard(netns, a) },
			want:   constant("input drop rule for IPv4 tcp new on net1 is missing"),
		},
		{
			name: "state removed",
			tamper: func(b backendUnderTest, netns ns.NetNS) error {
				return netns.Do(func(ns.NetNS) error { return b.Remove(a) })
			},
			want: func(b backendUnderTest) string { return strings.ReplaceAll(b.stateMissing, "{hash}", a.hash()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
				inNS(t, netns, func() error { return b.Apply(a, sampleRuleset()) })
				if err := tt.tamper(b, netns); err != nil {
					t.Fatalf("tamper: %v", err)
				}
				err := netns.Do(func(ns.NetNS) error { return b.Check(a, sampleRuleset()) })
				t.Logf("Check: %v", err)
				if err == nil || !strings.Contains(err.Error(), tt.want(b)) {
					t.Errorf("Check = %v\nwant an error containing %q", err, tt.want(b))
				}
			})
		})
	}
}

func constant(s string) func(backendUnderTest) string {
	return func(backendUnderTest) string { return s }
}

func TestRemoveIsIdempotentAndLeavesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Remove(sampleAttachment) }) // nothing there yet
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, sampleRuleset()) })
		for range 2 {
			inNS(t, netns, func() error { return b.Remove(sampleAttachment) })
		}
		if state := b.mustState(t, netns); len(state) > 0 {
			t.Errorf("state left after Remove:\n%s", strings.Join(state, "\n"))
		}
	})
}

// Two attachments in one netns (two egress interfaces) own separate state: each
// checks clean next to the other, and removing one leaves the other intact.
func TestAttachmentsDoNotDisturbEachOther(t *testing.T) {
	first, second := sampleAttachment, Attachment{ContainerID: "4a1f0c3b9e2d", IfName: "net2"}
	secondRules := Ruleset{Egress: "net2", SourcePerFamily: addrs("198.51.100.99"), Redirect: mustTable("80 tcp 203.0.113.80", "203.0.113.81")}
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Apply(first, sampleRuleset()) })
		inNS(t, netns, func() error { return b.Apply(second, secondRules) })
		inNS(t, netns, func() error { return b.Check(first, sampleRuleset()) })
		inNS(t, netns, func() error { return b.Check(second, secondRules) })

		inNS(t, netns, func() error { return b.Remove(first) })
		inNS(t, netns, func() error { return b.Check(second, secondRules) })
		state := strings.Join(b.mustState(t, netns), "\n")
		if strings.Contains(state, first.hash()) || !strings.Contains(state, second.hash()) {
			t.Errorf("after removing %s, state should hold only %s's:\n%s", first.hash(), second.hash(), state)
		}
	})
}

// The nftables table carries the attachment's identity on every rule, read back
// through the library as the plugin's GC or an operator would.
func TestNFTablesRulesCarryTheAttachmentIdentity(t *testing.T) {
	netns := topology.NewNS(t)
	inNS(t, netns, func() error { return nftablesBackend{}.Apply(sampleAttachment, sampleRuleset()) })
	inNS(t, netns, func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return err
		}
		if len(chains) != 4 {
			return fmt.Errorf("%d chains, want prerouting, postrouting, forward and input", len(chains))
		}
		for _, c := range chains {
			rules, err := conn.GetRules(c.Table, c)
			if err != nil {
				return err
			}
			for _, r := range rules {
				if got := string(r.UserData); !strings.Contains(got, sampleAttachment.comment()) {
					return fmt.Errorf("rule %d in %s has user data %q, want the comment %q", r.Handle, c.Name, got, sampleAttachment.comment())
				}
			}
		}
		return nil
	})
}

func TestNewPicksABackend(t *testing.T) {
	netns := topology.NewNS(t)
	for _, tt := range []struct {
		kind string
		want string
	}{
		{Auto, "nftables"},
		{NFTables, "nftables"},
		{IPTables, "iptables"},
	} {
		inNS(t, netns, func() error {
			b, err := New(tt.kind)
			if err != nil {
				return err
			}
			if b.Name() != tt.want {
				return fmt.Errorf("New(%q) = %s, want %s", tt.kind, b.Name(), tt.want)
			}
			return nil
		})
	}
	if _, err := New("ebtables"); err == nil || !strings.Contains(err.Error(), `unknown NAT backend "ebtables"`) {
		t.Errorf("New(ebtables) = %v, want an unknown backend error", err)
	}
}

// A thousand destination lines go in as one transaction like any other ruleset (the
// nftables batch once overflowed the netlink send buffer) and check clean.
func TestApplyTakesAThousandLines(t *testing.T) {
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = fmt.Sprintf("%d tcp 203.0.113.%d", 10000+i, 1+i%250)
	}
	big := Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.99"), Redirect: mustTable(lines...)}
	forEachBackend(t, func(t *testing.T, b backendUnderTest, netns ns.NetNS) {
		inNS(t, netns, func() error { return b.Apply(sampleAttachment, big) })
		inNS(t, netns, func() error { return b.Check(sampleAttachment, big) })
		dnat := 0
		for _, line := range b.mustState(t, netns) {
			dnat += len(b.perPortDNAT.FindAllString(line, -1))
		}
		if dnat != 1000 {
			t.Fatalf("%d DNAT rules live, want 1000", dnat)
		}
	})
}
