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

// Redirect mode: a host route per off-link destination via its family's gateway, none
// for on-link ones or repeats, and forwarding for the families redirected.
func TestPlanRoutesRedirectTargetsViaTheGateway(t *testing.T) {
	c := mustLoad(t, `{"cniVersion":"1.0.0","name":"n","type":"egress-router",
		"ip":{"addresses":["192.0.2.99/24","2001:db8:12::99/64"],"gateways":["192.0.2.1","2001:db8:12::1"],
		"destinations":["80 tcp 203.0.113.25","81 tcp 203.0.113.25","82 tcp 192.0.2.50","443 tcp 2001:db8:20::5"]}}`)
	s := Plan(c, "net1", "ext0")
	want := []Route{
		{Dst: netip.MustParsePrefix("203.0.113.25/32"), Via: netip.MustParseAddr("192.0.2.1")},
		{Dst: netip.MustParsePrefix("2001:db8:20::5/128"), Via: netip.MustParseAddr("2001:db8:12::1")},
	}
	if !slices.Equal(s.Routes, want) {
		t.Errorf("routes = %v, want %v", s.Routes, want)
	}
	if !slices.Equal(s.Forwarding, []int{4, 6}) || len(s.Sources) != 0 {
		t.Errorf("forwarding %v, sources %v", s.Forwarding, s.Sources)
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
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), OnLink: true, Table: PolicyTable},
		{Dst: netip.MustParsePrefix("2001:db8:12::/64"), Table: PolicyTable},
		{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:12::1"), Table: PolicyTable},
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
}
