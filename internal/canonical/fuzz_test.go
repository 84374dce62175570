package canonical

import (
	"strings"
	"testing"
)

// FuzzHostname: a name that normalises is plain ASCII with no empty label and no
// trailing dot, whichever dots it was spelt with, and normalises to itself.
func FuzzHostname(f *testing.F) {
	for _, seed := range []string{"www.example.com", "WWW.Example.COM.", "bücher.example", "a\u3002b\uff0ec\uff61", "a..b", "127.1", "\uff61"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		name, err := Hostname(in)
		if err != nil {
			return
		}
		for _, c := range []byte(name) {
			if c >= 0x80 || c <= ' ' {
				t.Fatalf("Hostname(%q) = %q, not plain ASCII", in, name)
			}
		}
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			t.Fatalf("Hostname(%q) = %q has an empty label", in, name)
		}
		if again, err := Hostname(name); err != nil || again != name {
			t.Fatalf("Hostname(%q) = %q, which normalises to %q, %v", in, name, again, err)
		}
	})
}
