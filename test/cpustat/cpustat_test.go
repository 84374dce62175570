package cpustat

import (
	"os"
	"syscall"
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

// TestMeasureCountsWhatARoundRan measures a round that spins until the kernel's other
// account of the process, getrusage, has grown by 200 ms of CPU: Measure reports that
// much too, however loaded the machine is, give or take what its own reads cost and a
// running thread's schedstat lagging by up to a scheduler tick. The idle share is a
// share.
func TestMeasureCountsWhatARoundRan(t *testing.T) {
	self := func() (time.Duration, error) { return ProcessTime(os.Getpid()) }
	const busy = 200 * time.Millisecond
	var spun time.Duration
	use, err := Measure(self, func() {
		start, giveUp := rusageCPU(t), time.Now().Add(10*time.Second)
		for spun < busy && time.Now().Before(giveUp) {
			spun = rusageCPU(t) - start
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if spun < busy {
		t.Fatalf("getrusage counted %v of a spin in 10 s", spun)
	}
	if use.CPU < spun-busy/20 || use.CPU > spun+busy/4 {
		t.Errorf("a spin of %v by getrusage measured %v", spun, use.CPU)
	}
	if use.IdlePercent < 0 || use.IdlePercent > 100 {
		t.Errorf("idle %v%%, want a share", use.IdlePercent)
	}
}

// rusageCPU is the process's user and system time by getrusage(2).
func rusageCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
