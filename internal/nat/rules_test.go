package nat

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/redirect"
)

func TestRulesetRulesInEvaluationOrder(t *testing.T) {
	rs := Ruleset{
		Egress:          "net1",
		SourcePerFamily: addrs("2001:db8:12::99", "192.0.2.99"),
		Redirect:        mustTable("80 tcp 203.0.113.25", "443 tcp 2001:db8:1::25 8443", "53 udp 203.0.113.53", "203.0.113.27"),
	}
	ap := netip.MustParseAddrPort
	want := []rule{
		{chain: prerouting, family: ipv4, notIn: "net1", proto: redirect.TCP, dport: 80, action: dnat, to: ap("203.0.113.25:80")},
		{chain: prerouting, family: ipv4, notIn: "net1", proto: redirect.UDP, dport: 53, action: dnat, to: ap("203.0.113.53:53")},
		{chain: prerouting, family: ipv4, notIn: "net1", action: dnat, to: ap("203.0.113.27:0")},
		{chain: postrouting, family: ipv4, out: "net1", action: snat, to: ap("192.0.2.99:0")},
		{chain: forward, family: ipv4, ct: ctEstablished, action: accept},
		{chain: forward, family: ipv4, out: "net1", ct: ctDNAT, action: accept},
		{chain: forward, family: ipv4, ct: ctNotDNAT, action: drop},
		{chain: input, family: ipv4, in: "net1", proto: redirect.TCP, ct: ctNew, action: drop},
		{chain: input, family: ipv4, in: "net1", proto: redirect.UDP, ct: ctNew, action: drop},
		{chain: input, family: ipv4, in: "net1", proto: redirect.SCTP, ct: ctNew, action: drop},
		{chain: prerouting, family: ipv6, notIn: "net1", proto: redirect.TCP, dport: 443, action: dnat, to: ap("[2001:db8:1::25]:8443")},
		{chain: postrouting, family: ipv6, out: "net1", action: snat, to: ap("[2001:db8:12::99]:0")},
		{chain: forward, family: ipv6, ct: ctEstablished, action: accept},
		{chain: forward, family: ipv6, out: "net1", ct: ctDNAT, action: accept},
		{chain: forward, family: ipv6, ct: ctNotDNAT, action: drop},
		{chain: input, family: ipv6, in: "net1", proto: redirect.TCP, ct: ctNew, action: drop},
		{chain: input, family: ipv6, in: "net1", proto: redirect.UDP, ct: ctNew, action: drop},
		{chain: input, family: ipv6, in: "net1", proto: redirect.SCTP, ct: ctNew, action: drop},
	}
	got, err := rs.rules()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%v\nwant:\n%v", got, want)
	}
}

// The proxy modes redirect nothing: they get the input guard alone, for each family
// with a source, and no NAT or forward rule.
func TestRulesetWithoutRedirectIsTheInputGuardAlone(t *testing.T) {
	got, err := Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.99")}.rules()
	if err != nil {
		t.Fatal(err)
	}
	want := []rule{
		{chain: input, family: ipv4, in: "net1", proto: redirect.TCP, ct: ctNew, action: drop},
		{chain: input, family: ipv4, in: "net1", proto: redirect.UDP, ct: ctNew, action: drop},
		{chain: input, family: ipv4, in: "net1", proto: redirect.SCTP, ct: ctNew, action: drop},
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%v\nwant:\n%v", got, want)
	}
	if chains := usedChains(got); !slices.Equal(chains, []chain{input}) {
		t.Errorf("chains used: %v, want input only", chains)
	}
}

func TestRulesetRulesRejectsWhatConfigWouldNot(t *testing.T) {
	tests := []struct {
		name string
		rs   Ruleset
		want string
	}{
		{"no egress", Ruleset{SourcePerFamily: addrs("192.0.2.99")}, "no egress interface"},
		{"two sources of a family", Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.99", "192.0.2.98")}, "two IPv4 source addresses"},
		{"invalid source", Ruleset{Egress: "net1", SourcePerFamily: []netip.Addr{{}}}, "invalid source address"},
		{
			"rule without a source of its family",
			Ruleset{Egress: "net1", SourcePerFamily: addrs("192.0.2.99"), Redirect: mustTable("443 tcp 2001:db8:1::25")},
			"no IPv6 source address for destination 2001:db8:1::25",
		},
		{
			"fallback without a source of its family",
			Ruleset{Egress: "net1", SourcePerFamily: addrs("2001:db8:12::99"), Redirect: mustTable("203.0.113.27")},
			"no IPv4 source address for destination 203.0.113.27",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.rs.rules(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("rules() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDiffDescribesDrift(t *testing.T) {
	want, err := sampleRuleset().rules()
	if err != nil {
		t.Fatal(err)
	}
	// edit returns a copy of want changed by f.
	edit := func(f func(live []rule) []rule) []rule { return f(slices.Clone(want)) }
	tests := []struct {
		name string
		live []rule
		want []string
	}{
		{"identical", want, nil},
		{"rule missing", edit(func(l []rule) []rule { return l[1:] }), []string{"DNAT rule for 80/tcp -> 203.0.113.25:80 is missing"}},
		{
			"rule added",
			edit(func(l []rule) []rule { return append(l, rule{chain: forward, family: ipv4, action: accept}) }),
			[]string{"unexpected forward accept rule for IPv4 traffic"},
		},
		{
			"rule duplicated",
			edit(func(l []rule) []rule { return slices.Insert(l, 1, l[0]) }),
			[]string{"duplicate DNAT rule for 80/tcp -> 203.0.113.25:80"},
		},
		{
			"rule not written by egress-router",
			edit(func(l []rule) []rule { return append(l, rule{chain: prerouting, unknown: "handle 9 (counter)"}) }),
			[]string{"unexpected rule in prerouting not written by egress-router: handle 9 (counter)"},
		},
		{
			"SNAT source changed",
			edit(func(l []rule) []rule {
				i := slices.IndexFunc(l, func(r rule) bool { return r.action == snat })
				l[i].to = netip.MustParseAddrPort("192.0.2.98:0")
				return l
			}),
			[]string{"SNAT source for IPv4 traffic is 192.0.2.98, want 192.0.2.99"},
		},
		{
			"egress interface changed",
			edit(func(l []rule) []rule { l[0].notIn = "eth1"; return l }),
			[]string{`DNAT rule for 80/tcp -> 203.0.113.25:80 matches packets arriving on any interface but "eth1", want any interface but "net1"`},
		},
		{
			"output interface match dropped",
			edit(func(l []rule) []rule {
				i := slices.IndexFunc(l, func(r rule) bool { return r.action == snat })
				l[i].out = ""
				return l
			}),
			[]string{`SNAT rule for IPv4 traffic -> 192.0.2.99 matches packets leaving on any interface, want "net1"`},
		},
		{
			"input guard rule missing",
			edit(func(l []rule) []rule {
				return slices.DeleteFunc(l, func(r rule) bool { return r.chain == input && r.family == ipv6 && r.proto == redirect.UDP })
			}),
			[]string{"input drop rule for IPv6 udp new on net1 is missing"},
		},
		{
			"input guard on another interface",
			edit(func(l []rule) []rule {
				i := slices.IndexFunc(l, func(r rule) bool { return r.chain == input })
				l[i].in = "eth0"
				return l
			}),
			[]string{`input drop rule for IPv4 tcp new on net1 matches packets arriving on "eth0", want "net1"`},
		},
		{
			"fallback moved first",
			edit(func(l []rule) []rule {
				i := slices.IndexFunc(l, func(r rule) bool { return r.action == dnat && r.proto == "" })
				fallback := l[i]
				return slices.Insert(slices.Delete(l, i, i+1), 0, fallback)
			}),
			[]string{"IPv4 rules in prerouting are out of order"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diff(want, tt.live); !slices.Equal(got, tt.want) {
				t.Errorf("diff = %q\nwant %q", got, tt.want)
			}
		})
	}
}
