package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
)

func mustPlan(t *testing.T, doc string) Plan {
	t.Helper()
	c, err := config.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return New(c, nat.Attachment{ContainerID: "c", IfName: "net1"}, "ext0", nil)
}

// Redirect mode: PolicyTable holds the reserved subnets and a default route per
// family via its gateway, whatever the destinations; forwarding for the families
// redirected, and no source rules; the ruleset redirects from one source per family.
func TestPlanRoutesRedirectTargetsThroughThePolicyTable(t *testing.T) {
	p := mustPlan(t, `{"cniVersion":"1.0.0","name":"n","type":"egress-router",
		"ip":{"addresses":["192.0.2.99/24","2001:db8:12::99/64"],"gateways":["192.0.2.1","2001:db8:12::1"],
		"destinations":["80 tcp 203.0.113.25","81 tcp 203.0.113.25","82 tcp 192.0.2.50","443 tcp 2001:db8:20::5"]}}`)
	want := []link.Route{
		{Dst: netip.MustParsePrefix("192.0.2.0/24")},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1")},
		{Dst: netip.MustParsePrefix("2001:db8:12::/64")},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:12::1")},
	}
	if !slices.Equal(p.Activation.Routes, want) {
		t.Errorf("routes = %v, want %v", p.Activation.Routes, want)
	}
	a := p.Activation
	if !slices.Equal(a.Forwarding, []int{4, 6}) || !slices.Equal(p.Link.Forwarding, a.Forwarding) || len(a.RoutedSources) != 0 {
		t.Errorf("forwarding %v (link %v), routed sources %v", a.Forwarding, p.Link.Forwarding, a.RoutedSources)
	}
	rs := p.Netfilter.Ruleset
	if len(rs.Redirect.Rules) != 4 || rs.Egress != "net1" ||
		!slices.Equal(rs.SourcePerFamily, []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8:12::99")}) {
		t.Errorf("ruleset = %+v", rs)
	}
}

// Proxy modes: a source rule per reserved address into PolicyTable, which holds the
// reserved subnet and a default route via the gateway; a gateway outside a /32
// reserved address is marked on-link. Nothing is forwarded or redirected.
func TestPlanRoutesProxySourcesThroughThePolicyTable(t *testing.T) {
	p := mustPlan(t, `{"cniVersion":"1.0.0","name":"n","type":"egress-router","mode":"dns-proxy",
		"ip":{"addresses":["192.0.2.99","2001:db8:12::99/64"],"gateways":["192.0.2.1","2001:db8:12::1"]},
		"dnsProxy":{"destinations":["80 203.0.113.25"]}}`)
	want := []link.Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), OnLink: true},
		{Dst: netip.MustParsePrefix("2001:db8:12::/64")},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:12::1")},
	}
	if !slices.Equal(p.Activation.Routes, want) {
		t.Errorf("routes = %v, want %v", p.Activation.Routes, want)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8:12::99")}; !slices.Equal(p.Activation.RoutedSources, want) {
		t.Errorf("routed sources = %v", p.Activation.RoutedSources)
	}
	if len(p.Link.Forwarding) != 0 || len(p.Activation.Forwarding) != 0 || len(p.Netfilter.Ruleset.Redirect.Targets()) != 0 {
		t.Errorf("proxy modes must not forward: %+v", p)
	}
}
