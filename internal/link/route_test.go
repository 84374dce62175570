package link

import (
	"net/netip"
	"slices"
	"testing"
)

// Redirect mode: per family forwarded, the pod's own traffic skips to the main table
// and everything else not arriving on net1 takes PolicyTable.
func TestForwardedTrafficIsRuledIntoThePolicyTable(t *testing.T) {
	r := Reservation{IfName: "net1", Forwarding: []int{4, 6}}
	want := []string{
		"32764: iif lo goto 32766", "32765: not iif net1 lookup 17746",
		"32764: iif lo goto 32766", "32765: not iif net1 lookup 17746",
	}
	if got := ruleStrings(r); !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

// Proxy modes: a source rule per routed source into PolicyTable.
func TestRoutedSourcesAreRuledIntoThePolicyTable(t *testing.T) {
	r := Reservation{IfName: "net1", RoutedSources: []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8:12::99")}}
	if got, want := ruleStrings(r), []string{"32765: from 192.0.2.99 lookup 17746", "32765: from 2001:db8:12::99 lookup 17746"}; !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

func ruleStrings(r Reservation) []string {
	var out []string
	for _, rule := range r.rules() {
		out = append(out, rule.String())
	}
	return out
}
