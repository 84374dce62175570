// Package flagtest checks a proxy's command line against a table of cases: each
// accepted or refused with an error naming the flag and its range, aliases giving what
// the flag they replace gives, and every flag of -help covered both ways.
package flagtest

import (
	"bytes"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/proxyflags"
)

// Case is one command line and what parsing it must give.
type Case struct {
	Args []string
	// Want are what the error output must say (the flag, the range); none: Args are
	// accepted.
	Want []string
	// Same, when set, is a command line that must give the same options as Args: the
	// flag an alias replaces, or the full form of a value.
	Same []string
}

// Parse is a proxy's flag parsing, as its main calls it.
type Parse[O any] func(args []string, stderr io.Writer) (O, error)

// Run checks each case, then that every flag -help lists has a case accepting it and
// one refusing it.
func Run[O any](t *testing.T, parse Parse[O], cases []Case) {
	t.Helper()
	accepted, refused := map[string]bool{}, map[string]bool{}
	for _, tc := range cases {
		t.Run(strings.Join(tc.Args, " "), func(t *testing.T) {
			var out bytes.Buffer
			o, err := parse(tc.Args, &out)
			switch {
			case len(tc.Want) == 0 && err != nil:
				t.Fatalf("refused: %v\n%s", err, &out)
			case len(tc.Want) > 0 && err == nil:
				t.Fatalf("accepted, want an error saying %q", tc.Want)
			case err != nil && proxyflags.ExitCode(err) != 2:
				t.Fatalf("exit code %d for %v, want 2 (usage error)", proxyflags.ExitCode(err), err)
			}
			for _, w := range tc.Want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("error output lacks %q:\n%s", w, &out)
				}
			}
			if tc.Same != nil {
				same, err := parse(tc.Same, io.Discard)
				if err != nil || !reflect.DeepEqual(o, same) {
					t.Errorf("gives %+v, want what %q gives: %+v (%v)", o, tc.Same, same, err)
				}
			}
		})
		for _, a := range tc.Args {
			if name, ok := flagName(a); ok {
				if len(tc.Want) == 0 {
					accepted[name] = true
				} else {
					refused[name] = true
				}
			}
		}
	}
	for _, name := range Flags(t, parse) {
		if !accepted[name] || !refused[name] {
			t.Errorf("-%s: no case accepting it (%v) or none refusing it (%v)", name, accepted[name], refused[name])
		}
	}
}

// Flags are the names -help lists.
func Flags[O any](t *testing.T, parse Parse[O]) []string {
	t.Helper()
	var out bytes.Buffer
	if _, err := parse([]string{"-help"}, &out); proxyflags.ExitCode(err) != 0 {
		t.Fatalf("-help: %v, exit code %d, want 0", err, proxyflags.ExitCode(err))
	}
	var names []string
	for _, m := range helpFlag.FindAllStringSubmatch(out.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("-help lists no flag:\n%s", &out)
	}
	return names
}

// helpFlag is a flag's line in the flag package's help.
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// flagName is the flag an argument sets, if it is one ("-name" or "-name=value").
func flagName(arg string) (string, bool) {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok || name == "" || strings.HasPrefix(name, "-") {
		return "", false
	}
	name, _, _ = strings.Cut(name, "=")
	return name, true
}
