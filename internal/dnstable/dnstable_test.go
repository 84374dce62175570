package dnstable

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	got, err := Parse([]string{
		"# legacy EGRESS_DNS_PROXY_DESTINATION block\n80   203.0.113.25\n8443 API.Example.COM. 443  # api\n",
		"5432\tdb.example.com",
		"9000 2001:DB8::9 90",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Table{Rules: []Rule{
		{Port: 80, Host: Host{Addr: netip.MustParseAddr("203.0.113.25")}, RemotePort: 80},
		{Port: 8443, Host: Host{Name: "api.example.com"}, RemotePort: 443},
		{Port: 5432, Host: Host{Name: "db.example.com"}, RemotePort: 5432},
		{Port: 9000, Host: Host{Addr: netip.MustParseAddr("2001:db8::9")}, RemotePort: 90},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	wantLines := []string{"80 203.0.113.25", "8443 api.example.com 443", "5432 db.example.com", "9000 2001:db8::9 90"}
	if !reflect.DeepEqual(got.Lines(), wantLines) {
		t.Fatalf("Lines() = %q, want %q", got.Lines(), wantLines)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"80 a.example", "80 b.example 8080"}, `line 2 "80 b.example 8080": local port 80 is already used on line 1`},
		{[]string{"0 a.example"}, `line 1 "0 a.example": local port "0" is outside 1-65535`},
		{[]string{"80 a.example 65536"}, `line 1 "80 a.example 65536": remote port "65536" is outside 1-65535`},
		{[]string{"80"}, `line 1 "80": want <port> <host> [<remote port>]`},
		{[]string{"80 a.example 80 x"}, `line 1 "80 a.example 80 x": want <port> <host> [<remote port>]`},
		{[]string{"80 bad_host.example"}, `line 1 "80 bad_host.example": "bad_host.example" is not a valid host name: disallowed rune U+005F`},
		{[]string{"80 203.0.113.0/24"}, `line 1 "80 203.0.113.0/24": "203.0.113.0/24" is a range; a destination is one address or host name`},
		{[]string{"80 010.0.0.1"}, `line 1 "80 010.0.0.1": "010.0.0.1" is not a valid host name: it reads as a non-standard IPv4 address`},
		{[]string{"80 ::ffff:10.0.0.1"}, `line 1 "80 ::ffff:10.0.0.1": "::ffff:10.0.0.1": IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address`},
		{[]string{"x a.example y", "81 ok.example"}, `line 1 "x a.example y": local port "x" is not a number; remote port "y" is not a number`},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q):\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
	_, err := Parse([]string{"1 a..b", "2 c..d"})
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want both bad lines reported, got %v", err)
	}
}
