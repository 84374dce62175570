package reserved

import (
	"net/netip"
	"slices"
	"testing"
)

func TestTheFirstAddressOfTheDestinationsFamilyIsItsSource(t *testing.T) {
	s := SourcesOf([]netip.Prefix{
		netip.MustParsePrefix("192.0.2.99/24"),
		netip.MustParsePrefix("2001:db8:12::99/64"),
		netip.MustParsePrefix("192.0.2.98/32"),
	})
	for _, tc := range []struct {
		dst, want string
	}{
		{"203.0.113.25", "192.0.2.99"},
		{"2001:db8:20::25", "2001:db8:12::99"},
	} {
		if got, ok := s.For(netip.MustParseAddr(tc.dst)); !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("For(%s) = %s %v, want %s", tc.dst, got, ok, tc.want)
		}
	}
	want := Sources{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8:12::99")}
	if got := s.PerFamily(); !slices.Equal(got, want) {
		t.Errorf("PerFamily() = %v, want %v", got, want)
	}
}

func TestAFamilyWithoutAReservedAddressHasNoSource(t *testing.T) {
	s := SourcesOf([]netip.Prefix{netip.MustParsePrefix("192.0.2.99/24")})
	if got, ok := s.For(netip.MustParseAddr("2001:db8:20::25")); ok {
		t.Errorf("For(IPv6) = %s, want none", got)
	}
	if got := s.PerFamily(); len(got) != 1 {
		t.Errorf("PerFamily() = %v, want the IPv4 source alone", got)
	}
}
