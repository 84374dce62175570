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

// Every IPv6 form that embeds an IPv4 address a packet may end up at is checked as
// that address: IPv4-compatible (::a.b.c.d), SIIT IPv4-translated (::ffff:0:a.b.c.d)
// and Teredo (2001::/32: the server's address in bits 32-63, the client's in the
// last 32 bits, inverted), as NAT64 and 6to4 are.
func TestEmbeddedIPv4IsCheckedAsTheIPv4Address(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		addr  string
		named []netip.Prefix
		err   string
	}{
		{addr: "::7f00:1", err: "destination ::7f00:1 embeds 127.0.0.1, a loopback address, and no rule names it"},
		{addr: "::a9fe:a9fe", err: "destination ::a9fe:a9fe embeds 169.254.169.254, a cloud metadata address, and no rule names it"},
		{addr: "::2", err: "destination ::2 embeds 0.0.0.2, an unspecified (this-network) address, and no rule names it"},
		{addr: "::cb00:7105"}, // 203.0.113.5
		{addr: "::ffff:0:7f00:1", err: "destination ::ffff:0:7f00:1 embeds 127.0.0.1, a loopback address, and no rule names it"},
		{addr: "::ffff:0:a9fe:a9fe", err: "destination ::ffff:0:a9fe:a9fe embeds 169.254.169.254, a cloud metadata address, and no rule names it"},
		{addr: "::ffff:0:cb00:7105"},
		// Teredo with server 203.0.113.5 and client 127.0.0.1 (80ff:fffe inverted).
		{addr: "2001:0:cb00:7105::80ff:fffe", err: "destination 2001:0:cb00:7105::80ff:fffe embeds 127.0.0.1, a loopback address, and no rule names it"},
		// Teredo with server 169.254.169.254 and client 203.0.113.5 (34ff:8efa inverted).
		{addr: "2001:0:a9fe:a9fe::34ff:8efa", err: "destination 2001:0:a9fe:a9fe::34ff:8efa embeds 169.254.169.254, a cloud metadata address, and no rule names it"},
		{addr: "2001:0:cb00:7105::34ff:8efa"},
		{addr: "2001:db8::7f00:1"}, // documentation, not Teredo
		// An explicit rule lifts the embedded address's block, as for NAT64.
		{addr: "::7f00:1", named: []netip.Prefix{p("127.0.0.1/32")}},
		{addr: "2001:0:cb00:7105::80ff:fffe", named: []netip.Prefix{p("127.0.0.1/32")}},
		// :: and ::1 are themselves, not IPv4-compatible forms.
		{addr: "::1", named: []netip.Prefix{p("::1/128")}},
	} {
		assertCheck(t, Check, "Check", tc.addr, tc.named, tc.err)
	}
	for _, tc := range []struct{ addr, err string }{
		{"::a00:1", "destination ::a00:1 embeds 10.0.0.1, a private address, and no rule names it"},
		{"::ffff:0:a00:1", "destination ::ffff:0:a00:1 embeds 10.0.0.1, a private address, and no rule names it"},
		{"2001:0:cb00:7105::f5ff:fffe", "destination 2001:0:cb00:7105::f5ff:fffe embeds 10.0.0.1, a private address, and no rule names it"},
		{"2001:0:a00:1::34ff:8efa", "destination 2001:0:a00:1::34ff:8efa embeds 10.0.0.1, a private address, and no rule names it"},
	} {
		assertCheck(t, CheckInternal, "CheckInternal", tc.addr, nil, tc.err)
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
