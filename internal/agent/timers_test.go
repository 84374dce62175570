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

// The defaults keep the HA goals by construction (the model in Timers' comment): the
// fencing margin of 500 ms, at most 2 Lease writes a second, several polls for a
// renewal to get through before the leader fences itself, and an average crash
// failover well under 2.5 s.
func TestDefaultTimersKeepTheGoals(t *testing.T) {
	d := DefaultTimers
	if margin := d.LeaseDuration - d.RenewDeadline; margin < 500*time.Millisecond {
		t.Errorf("fencing margin %v, want 500ms for the removal, scheduling and clock drift", margin)
	}
	if writes := float64(time.Second) / float64(d.RenewInterval); writes > 2 {
		t.Errorf("%.2f Lease writes a second, want at most 2", writes)
	}
	if polls := (d.RenewDeadline - d.RenewInterval) / d.RetryPeriod; polls < 5 {
		t.Errorf("%d polls for a renewal to get through before the deadline, want at least 5", polls)
	}
	pollLag := time.Duration(0.85 * float64(d.RetryPeriod)) // client-go: a poll every 1 to 2.2 RetryPeriods
	crash := d.LeaseDuration - (d.RenewInterval+d.RetryPeriod)/2 + 2*pollLag + probeWait
	if crash > 2200*time.Millisecond {
		t.Errorf("average crash failover %v by the model, want at most 2.2s (the goal is 2.5s)", crash)
	}
}
