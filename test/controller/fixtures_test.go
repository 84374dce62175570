package controller_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// freeLoopbackAddr returns a loopback address with a port nothing listens on now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeFile writes data to a new file in a temporary directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// replaceArg returns args with the argument old replaced by new; the test fails if
// old is not among them.
func replaceArg(t testing.TB, args []string, old, new string) []string {
	t.Helper()
	out := make([]string, len(args))
	found := false
	for i, a := range args {
		out[i] = a
		if a == old {
			out[i], found = new, true
		}
	}
	if !found {
		t.Fatalf("args %q lack %s", args, old)
	}
	return out
}
