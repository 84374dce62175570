package dnstable

import (
	"reflect"
	"testing"
)

// FuzzParse: no input panics; a table that parses renders to lines that parse back to
// an equal table.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"80 203.0.113.25\n8443 API.example.com. 443\n9000 2001:db8::9 90",
		"80 bücher.example",
		"80 a..b\n80 x",
		"1 0x7f000001",
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
