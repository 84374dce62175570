package canonical

import (
	"testing"
)

func TestAddr(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "::1", want: "::1"},
		{in: "::", want: "::"},
		{in: "0127.0.0.1", err: `"0127.0.0.1" is not an IP address`},
		{in: "0x7f.0.0.1", err: `"0x7f.0.0.1" is not an IP address`},
		{in: "2130706433", err: `"2130706433" is not an IP address`},
		{in: "127.1", err: `"127.1" is not an IP address`},
		{in: "::ffff:127.0.0.1", err: `"::ffff:127.0.0.1": IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address`},
		{in: "::127.0.0.1", err: `"::127.0.0.1": IPv4-compatible IPv6 addresses are not allowed; write the IPv4 address`},
		{in: "::ffff:0:127.0.0.1", err: `"::ffff:0:127.0.0.1": IPv4-translated (SIIT, ::ffff:0:a.b.c.d) addresses are not allowed; write the IPv4 address`},
		{in: "::ffff:0:7f00:1", err: `"::ffff:0:7f00:1": IPv4-translated (SIIT, ::ffff:0:a.b.c.d) addresses are not allowed; write the IPv4 address`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0": zone IDs are not allowed`},
		{in: "192.0.2.0/24", err: `"192.0.2.0/24" is not an IP address`},
	} {
		got, err := Addr(tc.in)
		check(t, "Addr", tc.in, got.String(), err, tc.want, tc.err)
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "192.0.2.99/24", want: "192.0.2.99/24"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "10.0.0.0/0", want: "10.0.0.0/0"},
		{in: "192.0.2.0/33", err: `"192.0.2.0/33" has an invalid mask /33 (want 0-32)`},
		{in: "2001:db8::/129", err: `"2001:db8::/129" has an invalid mask /129 (want 0-128)`},
		{in: "192.0.2.0/024", err: `"192.0.2.0/024" has an invalid mask /024 (want 0-32)`},
		{in: "192.0.2.0/-1", err: `"192.0.2.0/-1" has an invalid mask /-1 (want 0-32)`},
		{in: "192.0.2.0/", err: `"192.0.2.0/" has an invalid mask / (want 0-32)`},
		{in: "192.0.2.0", err: `"192.0.2.0" is not in CIDR form (address/length)`},
		{in: "::ffff:10.0.0.0/104", err: `"::ffff:10.0.0.0": IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address`},
	} {
		got, err := Prefix(tc.in)
		check(t, "Prefix", tc.in, got.String(), err, tc.want, tc.err)
	}
}

func TestHostname(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "www.example.com", want: "www.example.com"},
		{in: "WWW.Example.COM.", want: "www.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "localhost", want: "localhost"},
		{in: "a-b.example", want: "a-b.example"},
		{in: "", err: "host name is empty"},
		{in: ".", err: "host name is empty"},
		{in: "ex ample.com", err: `"ex ample.com" is not a valid host name: disallowed rune U+0020`},
		{in: "exa_mple.com", err: `"exa_mple.com" is not a valid host name: disallowed rune U+005F`},
		{in: "a.b..", err: `"a.b.." is not a valid host name: it has an empty label`},
		{in: "a..b", err: `"a..b" is not a valid host name: it has an empty label`},
		{in: "2130706433", err: `"2130706433" is not a valid host name: it reads as a non-standard IPv4 address`},
		{in: "0x7f000001", err: `"0x7f000001" is not a valid host name: it reads as a non-standard IPv4 address`},
		{in: "127.1", err: `"127.1" is not a valid host name: it reads as a non-standard IPv4 address`},
		{in: "192.0.2.1", err: `"192.0.2.1" is an IP address, not a host name`},
		{in: "\xd90.example", err: `"\xd90.example" is not a valid host name: it is not valid UTF-8`},
		{in: "xn--0-p10i", err: `"xn--0-p10i" is not a valid host name: it has an invalid label`},
	} {
		got, err := Hostname(tc.in)
		check(t, "Hostname", tc.in, got, err, tc.want, tc.err)
	}
}

// IDNA maps the ideographic, fullwidth and halfwidth full stops to '.': a name spelt
// with one is the name spelt with '.', so dots, trailing or not, are judged only after
// the mapping. Trimmed before it, "secret.example.com\uff0e" became
// "secret.example.com." and matched no rule written for secret.example.com.
func TestHostnameReadsUnicodeFullStopsAsDots(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "db.internal.example.com\uff61", want: "db.internal.example.com"},
		{in: "secret.example.com\uff0e", want: "secret.example.com"},
		{in: "secret.example.com\u3002", want: "secret.example.com"},
		{in: "secret\u3002example\uff0ecom\uff61", want: "secret.example.com"},
		{in: "B\u00fccher\uff0eexample", want: "xn--bcher-kva.example"},
		{in: "\uff61", err: "host name is empty"},
		{in: "a.example.\uff0e", err: `"a.example.．" is not a valid host name: it has an empty label`},
		{in: "a\u3002\u3002example", err: `"a。。example" is not a valid host name: it has an empty label`},
		{in: "\uff61a.example", err: `"｡a.example" is not a valid host name: it has an empty label`},
		{in: "\uff11\uff12\uff17\uff0e0.0.1", err: `"１２７．0.0.1" is an IP address, not a host name`},
		{in: "a.example\uff0e1", err: `"a.example．1" is not a valid host name: it reads as a non-standard IPv4 address`},
	} {
		got, err := Hostname(tc.in)
		check(t, "Hostname", tc.in, got, err, tc.want, tc.err)
	}
}

func check(t *testing.T, fn, in, got string, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Errorf("%s(%q) error = %v, want %q", fn, in, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("%s(%q) = %q, %v; want %q", fn, in, got, err, want)
	}
}
