package lines

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitDropsCommentsAndBlankLinesAndKeepsNumbering(t *testing.T) {
	got := Split([]string{
		"# header comment",
		"80   tcp\t203.0.113.25  # web",
		"",
		"8080 tcp 203.0.113.26 80\n\n   \n53 udp 203.0.113.53\r",
		"   #only a comment",
	})
	want := []Line{
		{Number: 2, Text: "80   tcp\t203.0.113.25", Fields: []string{"80", "tcp", "203.0.113.25"}},
		{Number: 4, Text: "8080 tcp 203.0.113.26 80", Fields: []string{"8080", "tcp", "203.0.113.26", "80"}},
		{Number: 7, Text: "53 udp 203.0.113.53", Fields: []string{"53", "udp", "203.0.113.53"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Split:\n got %#v\nwant %#v", got, want)
	}
}

func TestPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		err  string
	}{
		{in: "1", want: 1},
		{in: "65535", want: 65535},
		{in: "0", err: `port "0" is outside 1-65535`},
		{in: "65536", err: `port "65536" is outside 1-65535`},
		{in: "99999999999999999999", err: `port "99999999999999999999" is outside 1-65535`},
		{in: "-1", err: `port "-1" is not a number`},
		{in: "+80", err: `port "+80" is not a number`},
		{in: "http", err: `port "http" is not a number`},
		{in: "", err: `port is missing`},
	} {
		got, err := Port(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Port(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Port(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestErrorQuotesEscapedAndCapped(t *testing.T) {
	e := Errorf(Line{Number: 3, Text: "bad\x1b[31m line"}, "unknown %s", "thing")
	if got, want := e.Error(), `line 3 "bad\x1b[31m line": unknown thing`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	long := Errorf(Line{Number: 1, Text: strings.Repeat("a", 500)}, "too long")
	if len(long.Error()) > 200 || !strings.HasSuffix(long.Error(), `"...: too long`) {
		t.Errorf("long line not capped: %d bytes", len(long.Error()))
	}
}
