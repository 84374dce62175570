package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: no input panics, and a document that loads renders to one that loads
// back to an equal value.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"mode":"dns-proxy","ip":{"addresses":["2001:db8::9"]},"dnsProxy":{"destinations":"80 a.example\n81 b.example 8"}}`))
	f.Add([]byte(`{"ip":{"destinations":7}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load(data)
		if err != nil {
			return
		}
		assertRoundTrip(t, c)
	})
}
