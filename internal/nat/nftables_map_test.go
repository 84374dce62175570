package nat

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"

	"github.com/egress-router/egress-router/test/topology"
)

// The per-port DNAT rules live in maps: Check names a tampered element, a foreign
// one, and a changed or missing lookup rule in the same words as any other drift.
// Tampering goes through nft or the nftables library.
func TestNFTablesCheckNamesMapDrift(t *testing.T) {
	a := sampleAttachment
	table := "egress_router_" + a.hash()
	nft := func(args ...string) func(ns.NetNS) error {
		return func(netns ns.NetNS) error {
			_, err := command(netns, "nft", args...)
			return err
		}
	}
	// replaceLookup replaces the rule looking up redirect4 with rule.
	replaceLookup := func(rule string) func(ns.NetNS) error {
		return func(netns ns.NetNS) error {
			h, err := lookupHandle(netns, table, "redirect4")
			if err != nil {
				return err
			}
			return nft(append([]string{"replace", "rule", "inet", table, "prerouting", "handle", h}, strings.Fields(rule)...)...)(netns)
		}
	}
	tests := []struct {
		name   string
		tamper func(netns ns.NetNS) error
		want   []string
	}{
		{
			name: "element deleted with the library",
			tamper: func(netns ns.NetNS) error {
				return netns.Do(func(ns.NetNS) error {
					conn, err := nftables.New()
					if err != nil {
						return err
					}
					m := &nftables.Set{Table: &nftables.Table{Family: nftables.TableFamilyINet, Name: table}, Name: "redirect4"}
					udp53 := []byte{17, 0, 0, 0, 0, 53, 0, 0} // udp . 53, each part padded to 32 bits
					if err := conn.SetDeleteElements(m, []nftables.SetElement{{Key: udp53}}); err != nil {
						return err
					}
					return conn.Flush()
				})
			},
			want: []string{"DNAT rule for 53/udp -> 203.0.113.53:53 is missing"},
		},
		{
			name:   "IPv6 element deleted",
			tamper: nft("delete", "element", "inet", table, "redirect6", "{ tcp . 443 }"),
			want:   []string{"DNAT rule for 443/tcp -> [2001:db8:1::25]:8443 is missing"},
		},
		{
			name:   "element added by someone else",
			tamper: nft("add", "element", "inet", table, "redirect4", "{ tcp . 22 : 203.0.113.99 . 22 }"),
			want:   []string{"unexpected DNAT rule for 22/tcp -> 203.0.113.99:22"},
		},
		{
			name: "element retargeted",
			tamper: func(netns ns.NetNS) error {
				if err := nft("delete", "element", "inet", table, "redirect4", "{ tcp . 80 }")(netns); err != nil {
					return err
				}
				return nft("add", "element", "inet", table, "redirect4", "{ tcp . 80 : 203.0.113.99 . 8080 }")(netns)
			},
			want: []string{"DNAT target for 80/tcp is 203.0.113.99:8080, want 203.0.113.25:80"},
		},
		{
			name: "lookup rule deleted",
			tamper: func(netns ns.NetNS) error {
				h, err := lookupHandle(netns, table, "redirect4")
				if err != nil {
					return err
				}
				return nft("delete", "rule", "inet", table, "prerouting", "handle", h)(netns)
			},
			want: []string{"IPv4 DNAT rule looking up map redirect4 is missing"},
		},
		{
			name:   "lookup rule matching another interface",
			tamper: replaceLookup(`meta nfproto ipv4 iifname != "eth9" dnat ip to meta l4proto . th dport map @redirect4`),
			want:   []string{`DNAT rule for 80/tcp -> 203.0.113.25:80 matches packets arriving on any interface but "eth9", want any interface but "net1"`},
		},
		{
			name:   "lookup rule with a counter",
			tamper: replaceLookup(`meta nfproto ipv4 iifname != "net1" counter dnat ip to meta l4proto . th dport map @redirect4`),
			want: []string{
				"unexpected rule in prerouting not written by egress-router: handle",
				"IPv4 DNAT rule looking up map redirect4 is missing",
			},
		},
		{
			name:   "set added by someone else",
			tamper: nft("add", "set", "inet", table, "blocked", "{ type ipv4_addr; }"),
			want:   []string{"unexpected set blocked"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			netns := topology.NewNS(t)
			inNS(t, netns, func() error { return nftablesBackend{}.Apply(a, sampleRuleset()) })
			if err := tt.tamper(netns); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			err := netns.Do(func(ns.NetNS) error { return nftablesBackend{}.Check(a, sampleRuleset()) })
			t.Logf("Check: %v", err)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Check = %v\nwant an error containing %q", err, want)
				}
			}
		})
	}
}

// lookupHandle is the handle of the prerouting rule that looks up map name.
func lookupHandle(netns ns.NetNS, table, name string) (string, error) {
	out, err := command(netns, "nft", "-a", "list", "chain", "inet", table, "prerouting")
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`map @` + name + `\b.* # handle (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no rule looks up map %s:\n%s", name, out)
	}
	return m[1], nil
}

// A map whose elements take more than one netlink message (each message's element
// list is limited to 64 KiB) is written whole, in the same transaction.
func TestNFTablesMapTakesMoreElementsThanOneMessageHolds(t *testing.T) {
	lines := make([]string, 2*elementsPerMessage+1)
	for i := range lines {
		lines[i] = fmt.Sprintf("%d tcp 2001:db8:1::%x", 10000+i, 1+i)
	}
	big := Ruleset{Egress: "net1", SourcePerFamily: addrs("2001:db8:12::99"), Redirect: mustTable(lines...)}
	netns := topology.NewNS(t)
	inNS(t, netns, func() error { return nftablesBackend{}.Apply(sampleAttachment, big) })
	inNS(t, netns, func() error { return nftablesBackend{}.Check(sampleAttachment, big) })
	out := mustCommand(t, netns, "nft", "list", "map", "inet", "egress_router_"+sampleAttachment.hash(), "redirect6")
	if n := len(nftablesUnderTest.perPortDNAT.FindAllString(out, -1)); n != len(lines) {
		t.Errorf("map redirect6 holds %d elements, want %d", n, len(lines))
	}
}
