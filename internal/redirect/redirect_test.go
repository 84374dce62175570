package redirect

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want Table
	}{
		{
			name: "list with port map, protocols in any case and a fallback",
			in:   []string{"80 tcp 203.0.113.25", "8080 TCP 203.0.113.26 80", "53 Udp 203.0.113.53", "9 sctp 2001:db8::9", "203.0.113.27"},
			want: Table{
				Rules: []Rule{
					{Port: 80, Proto: TCP, Target: addr("203.0.113.25"), TargetPort: 80},
					{Port: 8080, Proto: TCP, Target: addr("203.0.113.26"), TargetPort: 80},
					{Port: 53, Proto: UDP, Target: addr("203.0.113.53"), TargetPort: 53},
					{Port: 9, Proto: SCTP, Target: addr("2001:db8::9"), TargetPort: 9},
				},
				Fallback: addr("203.0.113.27"),
			},
		},
		{
			name: "one pasted multi-line block with comments and odd whitespace",
			in:   []string{"# legacy EGRESS_DESTINATION\n  80\ttcp   203.0.113.25  # web\n\n53 udp 203.0.113.53\n53 tcp 203.0.113.53\n\n"},
			want: Table{Rules: []Rule{
				{Port: 80, Proto: TCP, Target: addr("203.0.113.25"), TargetPort: 80},
				{Port: 53, Proto: UDP, Target: addr("203.0.113.53"), TargetPort: 53},
				{Port: 53, Proto: TCP, Target: addr("203.0.113.53"), TargetPort: 53},
			}},
		},
		{
			name: "fallback alone",
			in:   []string{"203.0.113.27"},
			want: Table{Fallback: addr("203.0.113.27")},
		},
		{
			name: "empty",
			in:   []string{"", "# nothing"},
			want: Table{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLinesAreNormalised(t *testing.T) {
	got, err := Parse([]string{"80 TCP 203.0.113.25 80", "8080 tcp 2001:DB8::1 80", "203.0.113.27"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"80 tcp 203.0.113.25", "8080 tcp 2001:db8::1 80", "203.0.113.27"}
	if !reflect.DeepEqual(got.Lines(), want) {
		t.Fatalf("Lines() = %q, want %q", got.Lines(), want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // every error line, in order
	}{
		{"fallback not last", []string{"203.0.113.27", "80 tcp 203.0.113.25"},
			[]string{`line 1 "203.0.113.27": a fallback address (a line with only an IP) must be the last line`}},
		{"two fallbacks", []string{"203.0.113.27", "203.0.113.28"},
			[]string{`line 1 "203.0.113.27": a fallback address (a line with only an IP) must be the last line`}},
		{"port zero", []string{"0 tcp 203.0.113.25"},
			[]string{`line 1 "0 tcp 203.0.113.25": local port "0" is outside 1-65535`}},
		{"remote port too big", []string{"80 tcp 203.0.113.25 70000"},
			[]string{`line 1 "80 tcp 203.0.113.25 70000": remote port "70000" is outside 1-65535`}},
		{"duplicate local port", []string{"80 tcp 203.0.113.25", "80 udp 203.0.113.25", "80 TCP 203.0.113.26"},
			[]string{`line 3 "80 TCP 203.0.113.26": local port 80/tcp is already used on line 1`}},
		{"unknown protocol", []string{"80 icmp 203.0.113.25"},
			[]string{`line 1 "80 icmp 203.0.113.25": unknown protocol "icmp" (want tcp, udp or sctp)`}},
		{"CIDR", []string{"80 UDP 10.0.0.99/30"},
			[]string{`line 1 "80 UDP 10.0.0.99/30": "10.0.0.99/30" is a range; a destination must be a single IP address`}},
		{"host name", []string{"80 tcp example.com"},
			[]string{`line 1 "80 tcp example.com": "example.com" is a host name; redirect destinations must be IP addresses (dns-proxy mode forwards to names)`}},
		{"octal address", []string{"80 tcp 0177.0.0.1"},
			[]string{`line 1 "80 tcp 0177.0.0.1": "0177.0.0.1" is not an IP address`}},
		{"loopback", []string{"80 tcp 127.0.0.1"},
			[]string{`line 1 "80 tcp 127.0.0.1": "127.0.0.1" cannot be a destination (unspecified, loopback or multicast)`}},
		{"too many fields", []string{"80 tcp 203.0.113.25 80 extra"},
			[]string{`line 1 "80 tcp 203.0.113.25 80 extra": want <port> <protocol> <ip> [<remote port>], or a single fallback <ip> on the last line`}},
		{"two fields", []string{"80 tcp"},
			[]string{`line 1 "80 tcp": want <port> <protocol> <ip> [<remote port>], or a single fallback <ip> on the last line`}},
		{"every problem on a line, every bad line", []string{"x ftp host_name 0", "ok", "80 tcp 203.0.113.1"},
			[]string{
				`line 1 "x ftp host_name 0": local port "x" is not a number; unknown protocol "ftp" (want tcp, udp or sctp); "host_name" is not an IP address; remote port "0" is outside 1-65535`,
				`line 2 "ok": "ok" is a host name; redirect destinations must be IP addresses (dns-proxy mode forwards to names)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
