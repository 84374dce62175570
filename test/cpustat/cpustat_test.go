package cpustat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseStatSumsTheCPULine(t *testing.T) {
	stat := "cpu  100 5 50 800 20 3 7 15 9 0\ncpu0 50 2 25 400 10 1 3 7 4 0\nintr 12345\n"
	m, err := parseStat([]byte(stat))
	// Idle and iowait are idle; guest (9) is in user already and not added again.
	if err != nil || m != (machine{idle: 820, total: 1000}) {
		t.Fatalf("parseStat: %+v, %v; want idle 820 of 1000", m, err)
	}
	for _, bad := range []string{
		"",
		"cpu0 1 2 3 4 5 6 7 8\n",      // not the summary line
		"cpu 1 2 3 4 5 6 7\n",         // a time short
		"cpu 1 2 3 lots 5 6 7 8\n",    // not a number
		"intr 1\ncpu 1 2 3 4 5 6 7 8", // the summary line is the first
	} {
		if m, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestIdlePercentSince(t *testing.T) {
	before := machine{idle: 100, total: 1000}
	if got := (machine{idle: 150, total: 1200}).idlePercentSince(before); got != 25 {
		t.Errorf("50 idle of 200: %v%%, want 25%%", got)
	}
	if got := before.idlePercentSince(before); got != 0 {
		t.Errorf("no tick: %v%%, want 0", got)
	}
}

func TestParseSchedstat(t *testing.T) {
	ran, err := parseSchedstat([]byte("1234567 89 10\n"))
	if err != nil || ran != 1234567*time.Nanosecond {
		t.Fatalf("parseSchedstat: %v, %v; want 1.234567ms", ran, err)
	}
	for _, bad := range []string{"", "1 2\n", "x 2 3\n"} {
		if ran, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q) = %v, want an error", bad, ran)
		}
	}
}

// TestMeasureCountsWhatARoundRan measures a round that keeps a core busy for 200 ms:
// the process's CPU time grows by at least that much (and by no more than the round's
// wall time on every core), and the idle share is a share.
func TestMeasureCountsWhatARoundRan(t *testing.T) {
	self := func() (time.Duration, error) { return ProcessTime(os.Getpid()) }
	const busy = 200 * time.Millisecond
	start := time.Now()
	use, err := Measure(self, func() {
		for time.Since(start) < busy {
		}
	})
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// The spin's clock starts before Measure's first read: allow what that read took.
	if use.CPU < busy*9/10 || use.CPU > wall*time.Duration(runtime.NumCPU()) {
		t.Errorf("a %v spin measured %v of CPU in %v", busy, use.CPU, wall)
	}
	if use.IdlePercent < 0 || use.IdlePercent > 100 {
		t.Errorf("idle %v%%, want a share", use.IdlePercent)
	}
}

func TestMicrosecondsPer(t *testing.T) {
	use := Usage{CPU: 30 * time.Millisecond}
	if got := use.MicrosecondsPer(1000); got != 30 {
		t.Errorf("30 ms over 1000 operations: %v µs, want 30", got)
	}
	if got := use.MicrosecondsPer(0); got != 0 {
		t.Errorf("no operation: %v µs, want 0", got)
	}
}

func TestProcessTimeOfNoProcess(t *testing.T) {
	if ran, err := ProcessTime(-1); err == nil {
		t.Errorf("ProcessTime(-1) = %v, want an error", ran)
	}
}
