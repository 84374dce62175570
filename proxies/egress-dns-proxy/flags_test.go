package main

import (
	"io"
	"strings"
	"testing"
)

func TestFlagsThatWouldBreakTheProxyAreRefusedByName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means accepted
	}{
		{nil, ""},
		{[]string{"-ttl-floor", "1s", "-ttl-ceiling", "1s"}, ""},
		{[]string{"-idle-timeout", "0", "-max-connections", "0", "-drain-grace", "0"}, ""},
		{[]string{"-ttl-ceiling", "0"}, "-ttl-ceiling must be positive"},
		{[]string{"-ttl-ceiling", "-1s"}, "-ttl-ceiling must be positive"},
		{[]string{"-ttl-floor", "0"}, "-ttl-floor must be positive"},
		{[]string{"-ttl-floor", "-5s"}, "-ttl-floor must be positive"},
		{[]string{"-ttl-floor", "10m", "-ttl-ceiling", "1m"}, "-ttl-floor must not be above -ttl-ceiling"},
		{[]string{"-dns-timeout", "0"}, "-dns-timeout must be positive"},
		{[]string{"-dial-timeout", "-1s"}, "-dial-timeout must be positive"},
		{[]string{"-reload-interval", "0"}, "-reload-interval must be positive"},
		{[]string{"-idle-timeout", "-1s"}, "-idle-timeout must not be negative"},
		{[]string{"-drain-grace", "-1s"}, "-drain-grace must not be negative"},
		{[]string{"-max-connections", "-1"}, "-max-connections must not be negative"},
		{[]string{"-max-connections-per-client", "-1"}, "-max-connections-per-client must not be negative"},
		{[]string{"-ttl-ceiling", "soon"}, "invalid value"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
