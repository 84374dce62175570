package policy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/canonical"
)

func TestParseNormalises(t *testing.T) {
	p, err := Parse([]string{
		"# comment",
		"!*.Internal.Example.COM.  # trailing dot, case",
		"10.20.0.0/16",
		"2001:DB8::9",
		"!203.0.113.9",
		"bücher.example",
		"*.example.com\n*",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"!*.internal.example.com", "10.20.0.0/16", "2001:db8::9", "!203.0.113.9", "xn--bcher-kva.example", "*.example.com", "*"}
	if got := p.Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines() = %q\nwant %q", got, want)
	}
	if got, want := p.NamedAddrs(), []netip.Addr{netip.MustParseAddr("2001:db8::9")}; !reflect.DeepEqual(got, want) {
		t.Errorf("NamedAddrs() = %v, want %v: the allow address rules, not ranges or deny rules", got, want)
	}
	kinds := []Kind{Domain, Range, Address, Address, Name, Domain, Any}
	for i, r := range p.Rules {
		if r.Kind != kinds[i] {
			t.Errorf("rule %d kind %v, want %v", i, r.Kind, kinds[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"*", "example.com"}, `line 1 "*": "*" (allow everything not denied above) must be the last line`},
		{[]string{"!*"}, `line 1 "!*": "!*" is not allowed: everything no rule allows is already denied`},
		{[]string{"!"}, `line 1 "!": nothing follows the deny mark "!"`},
		{[]string{"203.0.113.0/33"}, `line 1 "203.0.113.0/33": "203.0.113.0/33" has an invalid mask /33 (want 0-32)`},
		{[]string{"203.0.113.5/24"}, `line 1 "203.0.113.5/24": "203.0.113.5/24" has host bits set; did you mean 203.0.113.0/24?`},
		{[]string{"www.*.example.com"}, `line 1 "www.*.example.com": a wildcard must be the whole first label, as in *.example.com, or "*" alone`},
		{[]string{"*example.com"}, `line 1 "*example.com": a wildcard must be the whole first label, as in *.example.com, or "*" alone`},
		{[]string{"exa$mple.com"}, `line 1 "exa$mple.com": "exa$mple.com" is not a valid host name: disallowed rune U+0024`},
		{[]string{"0x7f000001"}, `line 1 "0x7f000001": "0x7f000001" is not a valid host name: it reads as a non-standard IPv4 address`},
		{[]string{"::ffff:127.0.0.1"}, `line 1 "::ffff:127.0.0.1": "::ffff:127.0.0.1": IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address (rules name hosts or addresses, without a scheme or port)`},
		{[]string{"example.com:443"}, `line 1 "example.com:443": "example.com:443" is not an IP address (rules name hosts or addresses, without a scheme or port)`},
		{[]string{"a.example b.example"}, `line 1 "a.example b.example": want one address, range or host name per line`},
		{[]string{"ok.example", "!*", "bad_name", "*"}, strings.Join([]string{
			`line 2 "!*": "!*" is not allowed: everything no rule allows is already denied`,
			`line 3 "bad_name": "bad_name" is not a valid host name: disallowed rune U+005F`,
		}, "\n")},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	p, err := Parse([]string{
		"!*.internal.example.com",
		"!203.0.113.66",
		"203.0.113.0/24",
		"10.20.0.0/16",
		"2001:db8:5::/48",
		"www.example.org",
		"*.example.com",
		"169.254.169.254",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name, host, addr string
		allow            bool
		rule             int
		reason           string
	}{
		{"address in range", "", "203.0.113.5", true, 2, `allowed by rule 3 "203.0.113.0/24"`},
		{"deny address before range", "", "203.0.113.66", false, 1, `denied by rule 2 "!203.0.113.66"`},
		{"private range named by an address rule", "", "10.20.1.1", true, 3, `allowed by rule 4 "10.20.0.0/16"`},
		{"ipv6 range", "", "2001:db8:5::1", true, 4, `allowed by rule 5 "2001:db8:5::/48"`},
		{"exact name", "www.example.org", "198.51.100.7", true, 5, `allowed by rule 6 "www.example.org"`},
		{"exact name does not cover subdomains", "a.www.example.org", "198.51.100.7", false, -1, "no rule matches (default deny)"},
		{"wildcard covers the domain itself", "example.com", "198.51.100.8", true, 6, `allowed by rule 7 "*.example.com"`},
		{"wildcard covers names under it", "a.b.example.com", "198.51.100.8", true, 6, `allowed by rule 7 "*.example.com"`},
		{"wildcard is label-aligned", "badexample.com", "198.51.100.8", false, -1, "no rule matches (default deny)"},
		{"deny before allow", "db.internal.example.com", "198.51.100.9", false, 0, `denied by rule 1 "!*.internal.example.com"`},
		{"name rules never match an IP literal", "", "198.51.100.8", false, -1, "no rule matches (default deny)"},
		{"name rule resolving to a range address matches the earlier range rule", "www.example.org", "203.0.113.7", true, 2, `allowed by rule 3 "203.0.113.0/24"`},
		{"allowed name resolving to loopback is guarded", "www.example.org", "127.0.0.1", false, -1, "destination 127.0.0.1 is a loopback address and no rule names it"},
		{"allowed name resolving to link-local is guarded", "x.example.com", "169.254.10.10", false, -1, "destination 169.254.10.10 is a link-local address and no rule names it"},
		{"allowed name resolving to a private address is guarded", "x.example.com", "10.96.0.1", false, -1, "destination 10.96.0.1 is a private address and no rule names it"},
		{"allowed name resolving into a private range an address rule names", "x.example.com", "10.20.0.9", true, 3, `allowed by rule 4 "10.20.0.0/16"`},
		{"allowed name that did not resolve is refused", "x.example.com", "", false, -1, "destination is not a valid IP address"},
		{"metadata named by an address rule is allowed", "", "169.254.169.254", true, 7, `allowed by rule 8 "169.254.169.254"`},
		{"metadata named by an address rule lifts the guard for a name rule too", "x.example.com", "169.254.169.254", true, 6, `allowed by rule 7 "*.example.com"`},
		{"default deny", "other.example.net", "198.51.100.1", false, -1, "no rule matches (default deny)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addr netip.Addr
			if tc.addr != "" {
				addr = a(tc.addr)
			}
			d := p.Decide(tc.host, addr)
			if d.Allow != tc.allow || d.Rule != tc.rule || d.Reason() != tc.reason {
				t.Fatalf("Decide(%q, %s) = %+v, want allow=%v rule=%d reason=%q", tc.host, tc.addr, d, tc.allow, tc.rule, tc.reason)
			}
		})
	}
}

// A deny name rule holds for every spelling a client may send of a name it covers:
// the proxy canonicalises the requested host (canonical.Hostname) and decides on
// that. Unicode full stops used to leave a trailing dot that matched no rule, so "*"
// allowed what the deny rules were written to refuse.
func TestDenyNameRulesHoldForEverySpellingOfTheName(t *testing.T) {
	p, err := Parse([]string{"!*.internal.example.com", "!secret.example.com", "*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, requested := range []string{
		"db.internal.example.com", "DB.Internal.Example.COM.", "db.internal.example.com\uff61",
		"db\u3002internal\uff0eexample\uff61com", "internal.example.com\u3002",
		"secret.example.com", "secret.example.com\uff0e", "secret.example.com\u3002", "SECRET\uff0eexample.com",
	} {
		host, err := canonical.Hostname(requested)
		if err != nil {
			t.Errorf("%q: %v", requested, err)
			continue
		}
		if d := p.Decide(host, netip.MustParseAddr("198.51.100.7")); d.Allow || d.Rule > 1 {
			t.Errorf("%q (read as %q): %s; want one of the deny rules to decide", requested, host, d.Reason())
		}
	}
	// Rules written with Unicode full stops are the same rules.
	written, err := Parse([]string{"!*.internal.example.com\u3002", "!secret\uff0eexample.com\uff61", "*"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := written.Lines(), p.Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules with Unicode full stops read as %q, want %q", got, want)
	}
}

func TestStarAllowsAllButDeniedAndGuarded(t *testing.T) {
	p, err := Parse([]string{"!203.0.113.0/24", "*"})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	if d := p.Decide("any.example", a("198.51.100.1")); !d.Allow {
		t.Errorf("* should allow: %+v", d)
	}
	if d := p.Decide("", a("203.0.113.1")); d.Allow {
		t.Errorf("deny above * should win: %+v", d)
	}
	if d := p.Decide("", a("127.0.0.1")); d.Allow {
		t.Errorf("* must not lift the guard: %+v", d)
	}
	if d := (Policy{}).Decide("example.com", a("198.51.100.1")); d.Allow {
		t.Errorf("empty policy must deny: %+v", d)
	}
}

func TestAllowsName(t *testing.T) {
	names, err := Parse([]string{"!*.internal.example.com", "*.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	withRange, err := Parse([]string{"!bad.example.com", "203.0.113.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    Policy
		host string
		want bool
	}{
		{names, "www.example.com", true},
		{names, "db.internal.example.com", false},
		{names, "example.net", false},
		{withRange, "anything.example.net", true}, // depends on what it resolves to
		{withRange, "bad.example.com", false},
	} {
		if got := tc.p.AllowsName(tc.host); got != tc.want {
			t.Errorf("%q.AllowsName(%q) = %v, want %v", tc.p.Lines(), tc.host, got, tc.want)
		}
	}
}

// Decide runs on every request of a keep-alive connection: it must not allocate.
func TestDecideDoesNotAllocate(t *testing.T) {
	p, err := Parse([]string{"!*.internal.example.com", "203.0.113.0/24", "*.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("198.51.100.7")
	allocs := testing.AllocsPerRun(100, func() {
		if d := p.Decide("www.example.com", addr); !d.Allow {
			t.Fatal("not allowed")
		}
	})
	if allocs != 0 {
		t.Fatalf("Decide allocates %.0f times per call", allocs)
	}
}
