package link

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/egress-router/egress-router/pkg/config"
)

func mustLoad(t *testing.T, doc string) *config.Config {
	t.Helper()
	c, err := config.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Redirect mode: PolicyTable holds the reserved subnets and a default route per
// family via its gateway, whatever the destinations; forwarding for the families
// redirected, and no source rules.
func TestPlanRoutesRedirectTargetsThroughThePolicyTable(t *testing.T) {
	c := mustLoad(t, `{"cniVersion":"1.0.0","name":"n","type":"egress-router",
		"ip":{"addresses":["192.0.2.99/24","2001:db8:12::99/64"],"gateways":["192.0.2.1","2001:db8:12::1"],
		"destinations":["80 tcp 203.0.113.25","81 tcp 203.0.113.25","82 tcp 192.0.2.50","443 tcp 2001:db8:20::5"]}}`)
	s := Plan(c, "net1", "ext0")
	want := []Route{
		{Dst: netip.MustParsePrefix("192.0.2.0/24")},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1")},
		{Dst: netip.MustParsePrefix("2001:db8:12::/64")},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:12::1")},
	}
	if !slices.Equal(s.Routes, want) {
		t.Errorf("routes = %v, want %v", s.Routes, want)
	}
	if !slices.Equal(s.Forwarding, []int{4, 6}) || len(s.Sources) != 0 {
		t.Errorf("forwarding %v, sources %v", s.Forwarding, s.Sources)
	}
	wantRules := []string{
		"32764: iif lo goto 32766", "32765: not iif net1 lookup 17746",
		"32764: iif lo goto 32766", "32765: not iif net1 lookup 17746",
	}
	if got := ruleStrings(s); !slices.Equal(got, wantRules) {
		t.Errorf("rules = %q, want %q", got, wantRules)
	}
}

// Proxy modes: a source rule per reserved address into PolicyTable, which holds the
// reserved subnet and a default route via the gateway; a gateway outside a /32
// reserved address is marked on-link.
func TestPlanRoutesProxySourcesThroughThePolicyTable(t *testing.T) {
	c := mustLoad(t, `{"cniVersion":"1.0.0","name":"n","type":"egress-router","mode":"dns-proxy",
		"ip":{"addresses":["192.0.2.99","2001:db8:12::99/64"],"gateways":["192.0.2.1","2001:db8:12::1"]},
		"dnsProxy":{"destinations":["80 203.0.113.25"]}}`)
	s := Plan(c, "net1", "ext0")
	want := []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), OnLink: true},
		{Dst: netip.MustParsePrefix("2001:db8:12::/64")},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:12::1")},
	}
	if !slices.Equal(s.Routes, want) {
		t.Errorf("routes = %v, want %v", s.Routes, want)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8:12::99")}; !slices.Equal(s.Sources, want) {
		t.Errorf("sources = %v", s.Sources)
	}
	if len(s.Forwarding) != 0 {
		t.Errorf("proxy modes must not forward: %v", s.Forwarding)
	}
	if got, want := ruleStrings(s), []string{"32765: from 192.0.2.99 lookup 17746", "32765: from 2001:db8:12::99 lookup 17746"}; !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

func ruleStrings(s Spec) []string {
	var out []string
	for _, r := range s.rules() {
		out = append(out, r.String())
	}
	return out
}
