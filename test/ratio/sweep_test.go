package ratio

import (
	"strings"
	"testing"
)

// A round per setup gives, for subject, peer A, peer B and A's twin, the values below
// in rounds 1, 2, 3: the table shows each median, the subject's ratio to each peer, the
// targets with the verdict, and A against its twin.
func TestSweepTableShowsMediansRatiosVerdictsAndNoise(t *testing.T) {
	t.Setenv("BENCH_BASELINE", "")
	s := NewSweep(t, "ours", "A", "B")
	values := [][]float64{ // per setup, per round
		{30, 10, 20}, // median 20
		{9, 10, 11},  // 10
		{5, 50, 25},  // 25
		{10, 8, 9},   // 9
	}
	round := make([]int, s.Setups())
	s.Measure(16, 3, []Quantity{
		{Name: "rate/s", Targets: []Target{AtLeast(2), AtLeast(1)}},
		{Name: "cost", Targets: []Target{AtMost(2)}},
	}, func(setup int) ([]float64, error) {
		v := values[setup][round[setup]]
		round[setup]++
		return []float64{v, v}, nil
	})
	s.Measure(1, 1, []Quantity{{Name: "resent"}}, func(setup int) ([]float64, error) {
		return []float64{[]float64{0.5, 0, 2, 0}[setup]}, nil
	})
	s.Note("a note")
	want := []string{
		"  measure  clients   ours      A      B  ours/A  ours/B  target  verdict  noise A/A #2",
		"  rate/s        16  20.00  10.00  25.00    2.00    0.80   ≥2 ≥1     MISS          1.11",
		"  cost          16  20.00  10.00  25.00    2.00    0.80    ≤2 -       ok          1.11",
		"  resent         1   0.50   0.00   2.00       -    0.25     - -        -             -",
		"  a note",
		"  ! marks a median measured with failures (the benchmark fails).",
	}
	wantTable(t, s, want)
}

// With BENCH_BASELINE, the last setup is ours at that revision, and the last column
// ours against it in place of the noise.
func TestSweepWithBaselineComparesOursToOursAtTheRevision(t *testing.T) {
	t.Setenv("BENCH_BASELINE", "abc123")
	s := NewSweep(t, "ours", "A")
	s.Measure(16, 1, []Quantity{{Name: "rate/s"}}, func(setup int) ([]float64, error) {
		return []float64{[]float64{30, 10, 20}[setup]}, nil
	})
	if got := s.Name(2); got != "ours@abc123" {
		t.Errorf("the last setup is %q, want ours@abc123", got)
	}
	want := []string{
		"  measure  clients   ours      A  ours/A  target  verdict  ours/ours@abc123",
		"  rate/s        16  30.00  10.00    3.00       -        -              1.50",
		"  BENCH_BASELINE: the last column is ours against ours built at abc123, in the same rounds; this run has no noise column.",
		"  ! marks a median measured with failures (the benchmark fails).",
	}
	wantTable(t, s, want)
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		target Target
		ratio  float64
		met    bool
		text   string
	}{
		{AtLeast(1.5), 1.5, true, "≥1.5"},
		{AtLeast(1.5), 1.49, false, "≥1.5"},
		{AtMost(1), 1, true, "≤1"},
		{AtMost(1), 1.01, false, "≤1"},
	} {
		if c.target.met(c.ratio) != c.met || c.target.String() != c.text {
			t.Errorf("%s at %v: met %v, want %s %v", c.target, c.ratio, c.target.met(c.ratio), c.text, c.met)
		}
	}
}

func TestPercent(t *testing.T) {
	if got := Percent(4, 400); got != 1 {
		t.Errorf("4 of 400: %v%%, want 1%%", got)
	}
	if got := Percent(0, 0); got != 0 {
		t.Errorf("of nothing: %v%%, want 0", got)
	}
}

// wantTable checks s's table line by line against want (trailing spaces aside).
func wantTable(t *testing.T, s *Sweep, want []string) {
	t.Helper()
	got := strings.Split(strings.Trim(s.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("table:\n%s", s.String())
	}
	for i := range want {
		if strings.TrimRight(got[i], " ") != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}
