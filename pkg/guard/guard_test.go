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
		{addr: "10.0.0.1"}, // private ranges are CheckInternal's
		{addr: "127.0.0.1", err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "127.9.9.9", err: "destination 127.9.9.9 is a loopback address and no rule names it"},
		{addr: "::1", err: "destination ::1 is a loopback address and no rule names it"},
		{addr: "0.0.0.0", err: "destination 0.0.0.0 is an unspecified (this-network) address and no rule names it"},
		{addr: "::", err: "destination :: is the unspecified address and no rule names it"},
		{addr: "169.254.169.254", err: "destination 169.254.169.254 is a cloud metadata address and no rule names it"},
		{addr: "169.254.1.1", err: "destination 169.254.1.1 is a link-local address and no rule names it"},
		{addr: "fe80::1", err: "destination fe80::1 is a link-local address and no rule names it"},
		{addr: "fe80::1%eth0", err: "destination fe80::1 is a link-local address and no rule names it"},
		{addr: "fd00:ec2::254", err: "destination fd00:ec2::254 is a cloud metadata address and no rule names it"},
		{addr: "100.100.100.200", err: "destination 100.100.100.200 is a cloud metadata address and no rule names it"},
		{addr: "224.0.0.1", err: "destination 224.0.0.1 is a multicast address and no rule names it"},
		{addr: "ff02::1", err: "destination ff02::1 is a multicast address and no rule names it"},
		{addr: "255.255.255.255", err: "destination 255.255.255.255 is the broadcast address and no rule names it"},
		{addr: "::ffff:127.0.0.1", err: "destination ::ffff:127.0.0.1 is an IPv4-mapped IPv6 address and no rule names it"},
		{addr: "64:ff9b::a9fe:a9fe", err: "destination 64:ff9b::a9fe:a9fe embeds 169.254.169.254, a cloud metadata address, and no rule names it"},
		{addr: "64:ff9b::7f00:1", err: "destination 64:ff9b::7f00:1 embeds 127.0.0.1, a loopback address, and no rule names it"},
		{addr: "64:ff9b::cb00:7105"}, // NAT64 of 203.0.113.5
		{addr: "64:ff9b:1::1", err: "destination 64:ff9b:1::1 is a local-use NAT64 address and no rule names it"},
		{addr: "2002:a9fe:a9fe::1", err: "destination 2002:a9fe:a9fe::1 embeds 169.254.169.254, a cloud metadata address, and no rule names it"},
		// Explicit rules lift a block only when they lie inside it.
		{addr: "169.254.169.254", named: []netip.Prefix{p("169.254.169.254/32")}},
		{addr: "64:ff9b::a9fe:a9fe", named: []netip.Prefix{p("169.254.169.254/32")}},
		{addr: "169.254.169.254", named: []netip.Prefix{p("169.254.0.0/16")}, err: "destination 169.254.169.254 is a cloud metadata address and no rule names it"},
		{addr: "169.254.1.1", named: []netip.Prefix{p("169.254.0.0/16")}},
		{addr: "127.0.0.1", named: []netip.Prefix{p("0.0.0.0/0")}, err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "127.0.0.1", named: []netip.Prefix{p("127.0.0.2/32")}, err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "::1", named: []netip.Prefix{p("::1/128")}},
		{addr: "", err: "destination is not a valid IP address"},
	} {
		assertCheck(t, Check, "Check", tc.addr, tc.named, tc.err)
	}
}

func TestCheckInternalAddsThePrivateRanges(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		addr  string
		named []netip.Prefix
		err   string
	}{
		{addr: "203.0.113.5"},
		{addr: "10.96.0.1", err: "destination 10.96.0.1 is a private address and no rule names it"},
		{addr: "172.30.0.10", err: "destination 172.30.0.10 is a private address and no rule names it"},
		{addr: "192.168.1.1", err: "destination 192.168.1.1 is a private address and no rule names it"},
		{addr: "100.64.0.1", err: "destination 100.64.0.1 is a shared (carrier-grade NAT) address and no rule names it"},
		{addr: "fd12::1", err: "destination fd12::1 is a unique local address and no rule names it"},
		{addr: "64:ff9b::a60:1", err: "destination 64:ff9b::a60:1 embeds 10.96.0.1, a private address, and no rule names it"},
		{addr: "127.0.0.1", err: "destination 127.0.0.1 is a loopback address and no rule names it"},
		{addr: "100.100.100.200", err: "destination 100.100.100.200 is a cloud metadata address and no rule names it"},
		{addr: "10.20.5.5", named: []netip.Prefix{p("10.20.0.0/16")}},
		{addr: "10.21.5.5", named: []netip.Prefix{p("10.20.0.0/16")}, err: "destination 10.21.5.5 is a private address and no rule names it"},
		{addr: "10.20.5.5", named: []netip.Prefix{p("0.0.0.0/0")}, err: "destination 10.20.5.5 is a private address and no rule names it"},
	} {
		assertCheck(t, CheckInternal, "CheckInternal", tc.addr, tc.named, tc.err)
	}
}

func assertCheck(t *testing.T, check func(netip.Addr, ...netip.Prefix) error, name, addr string, named []netip.Prefix, want string) {
	t.Helper()
	var a netip.Addr
	if addr != "" {
		a = netip.MustParseAddr(addr)
	}
	got := ""
	if err := check(a, named...); err != nil {
		got = err.Error()
	}
	if got != want {
		t.Errorf("%s(%s, %v) = %q, want %q", name, addr, named, got, want)
	}
}
