// Package wait is the one way tests wait for something to become true: poll a
// condition, bounded in time.
package wait

import (
	"testing"
	"time"
)

// interval is how often a condition is polled: short next to any timeout a test
// waits out, long enough not to busy the two cores the suites share.
const interval = 10 * time.Millisecond

// Until polls cond until it holds or within has passed, and reports whether it held.
func Until(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); !cond(); time.Sleep(interval) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// For fails the test if cond does not hold within; what names the awaited state.
func For(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(within, cond) {
		t.Fatalf("timed out after %s waiting for %s", within, what)
	}
}
