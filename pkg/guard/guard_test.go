package guard

import (
	"net/netip"
	"testing"
)

func TestCheck(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		addr  string
		named []netip.Prefix
		err   string
	}{
		{addr: "203.0.113.5"},
		{addr: "2001:db8::5"},
		{addr: "10.0.0.1"},
		{addr: "127.0.0.1", err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "127.9.9.9", err: "destination 127.9.9.9 is a loopback address and no rule names it"},
		{addr: "::1", err: "destination ::1 is a loopback address and no rule names it"},
		{addr: "0.0.0.0", err: "destination 0.0.0.0 is an unspecified (this-network) address and no rule names it"},
		{addr: "::", err: "destination :: is the unspecified address and no rule names it"},
		{addr: "169.254.169.254", err: "destination 169.254.169.254 is a cloud metadata address and no rule names it"},
		{addr: "169.254.1.1", err: "destination 169.254.1.1 is a link-local address and no rule names it"},
		{addr: "fe80::1", err: "destination fe80::1 is a link-local address and no rule names it"},
		{addr: "fd00:ec2::254", err: "destination fd00:ec2::254 is a cloud metadata address and no rule names it"},
		{addr: "100.100.100.200", err: "destination 100.100.100.200 is a cloud metadata address and no rule names it"},
		{addr: "224.0.0.1", err: "destination 224.0.0.1 is a multicast address and no rule names it"},
		{addr: "ff02::1", err: "destination ff02::1 is a multicast address and no rule names it"},
		{addr: "255.255.255.255", err: "destination 255.255.255.255 is the broadcast address and no rule names it"},
		{addr: "::ffff:127.0.0.1", err: "destination ::ffff:127.0.0.1 is an IPv4-mapped IPv6 address and no rule names it"},
		// Explicit rules lift a block only when they lie inside it.
		{addr: "169.254.169.254", named: []netip.Prefix{p("169.254.169.254/32")}},
		{addr: "169.254.169.254", named: []netip.Prefix{p("169.254.0.0/16")}, err: "destination 169.254.169.254 is a cloud metadata address and no rule names it"},
		{addr: "169.254.1.1", named: []netip.Prefix{p("169.254.0.0/16")}},
		{addr: "127.0.0.1", named: []netip.Prefix{p("0.0.0.0/0")}, err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "127.0.0.1", named: []netip.Prefix{p("127.0.0.2/32")}, err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "::1", named: []netip.Prefix{p("::1/128")}},
	} {
		err := Check(netip.MustParseAddr(tc.addr), tc.named...)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("Check(%s, %v) = %q, want %q", tc.addr, tc.named, got, tc.err)
		}
	}
}
