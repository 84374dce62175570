package policy

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/egress-router/egress-router/internal/guard"
)

// FuzzParse: no input panics; a policy that parses renders to lines that parse back to
// an equal policy; and no decision ever allows a guarded address that no allow address
// rule names.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"!*.internal.example.com\n10.20.0.0/16\n*.example.com\n*",
		"203.0.113.9\n!2001:db8::/32\nWWW.Example.COM.",
		"*\nexample.com",
		"!*",
		"169.254.169.254\nbücher.example",
		"!secret.example.com\uff0e\n!*.internal\u3002example.com\n*",
	} {
		f.Add(seed, "www.example.com", "127.0.0.1")
	}
	f.Fuzz(func(t *testing.T, in, host, addr string) {
		p, err := Parse([]string{in})
		if err != nil {
			return
		}
		again, err := Parse(p.Lines())
		if err != nil {
			t.Fatalf("rendered lines %q do not parse: %v", p.Lines(), err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("round trip: %+v != %+v", p, again)
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		d := p.Decide(host, a)
		if d.Allow && guard.CheckInternal(a, p.named...) != nil {
			t.Fatalf("%q allowed guarded %s for %q: %+v", p.Lines(), a, host, d)
		}
	})
}
