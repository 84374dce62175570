package agent

import (
	"strings"
	"testing"
	"time"
)

func TestTimersRefuseWhatBreaksFencing(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	for _, tc := range []struct {
		name   string
		timers Timers
		want   string // "" = valid
	}{
		{"defaults", DefaultTimers, ""},
		{"client-go's defaults", Timers{15 * s, 10 * s, 2 * s, 0}, ""},
		{"lease not whole seconds", Timers{2500 * ms, 1500 * ms, 500 * ms, 0}, "whole number of seconds"},
		{"lease under a second", Timers{500 * ms, 300 * ms, 100 * ms, 0}, "whole number of seconds"},
		{"renew deadline too close to the lease", Timers{2 * s, 1900 * ms, 500 * ms, 0}, "may still hold the address"},
		{"renew deadline past the lease", Timers{2 * s, 3 * s, 500 * ms, 0}, "may still hold the address"},
		{"retry period too long for the deadline", Timers{2 * s, 1500 * ms, 1300 * ms, 0}, "1.2 × the retry period"},
		{"no retry period", Timers{2 * s, 1500 * ms, 0, 0}, "retry period 0s"},
		{"renew interval leaves no renewal before the deadline", Timers{2 * s, 1500 * ms, 200 * ms, 1300 * ms}, "less than the renew deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.timers.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
