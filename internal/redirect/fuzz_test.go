package redirect

import (
	"reflect"
	"testing"
)

// FuzzParse: no input panics; a table that parses renders to lines that parse back to
// an equal table.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"80 tcp 203.0.113.25\n8080 TCP 203.0.113.26 80\n53 udp 2001:db8::53\n203.0.113.27",
		"# c\n\n9 sctp 203.0.113.9 # x",
		"203.0.113.27\n80 tcp 203.0.113.25",
		"80 tcp 203.0.113.25\n80 tcp 203.0.113.26",
		"0 icmp 10.0.0.99/30 70000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		table, err := Parse([]string{in})
		if err != nil {
			return
		}
		again, err := Parse(table.Lines())
		if err != nil {
			t.Fatalf("rendered lines %q do not parse: %v", table.Lines(), err)
		}
		if !reflect.DeepEqual(table, again) {
			t.Fatalf("round trip: %+v != %+v", table, again)
		}
	})
}
