package ratio

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"unicode/utf8"
)

// Sweep is a benchmark's table: the subject (one of the project's proxies) against its
// peers, one row per quantity and concurrency. Each round measures every setup once,
// always in the same order — the subject, each peer, then a second, identical instance
// of the first peer (its twin) — so a burst of other load on the machine lands on all
// of them or on none, and each value is the median of its rounds. The first peer's
// ratio to its twin is the harness's own noise, printed beside the ratios it qualifies:
// how far apart two identical setups measure in the same alternation.
//
// With BENCH_BASELINE set (Baseline), the last setup is the subject built at that
// revision instead, and the last column the subject against it: a change measured
// beside what it changes, in the same rounds, where separate runs on a shared host
// differ by more than most changes do.
type Sweep struct {
	b        testing.TB
	subject  string
	peers    []string
	baseline string // the revision the last setup was built at, or "" for the twin
	rows     []row
	notes    []string
}

// Quantity is one figure a round yields.
type Quantity struct {
	Name string // what and in which unit: "new connections/s"
	// Targets holds the ratio subject/peer each peer is held to, in the order of the
	// peers; a missing or zero Target is none.
	Targets []Target
}

// Target is a bound on the ratio subject/peer.
type Target struct {
	Ratio  float64
	AtMost bool // a cost (latency, memory): the ratio must not exceed Ratio
}

// AtLeast is a target for a rate: the subject does at least r times the peer's.
func AtLeast(r float64) Target { return Target{Ratio: r} }

// AtMost is a target for a cost: the subject's is at most r times the peer's.
func AtMost(r float64) Target { return Target{Ratio: r, AtMost: true} }

func (t Target) String() string {
	switch {
	case t.Ratio == 0:
		return "-"
	case t.AtMost:
		return "≤" + strconv.FormatFloat(t.Ratio, 'g', -1, 64)
	default:
		return "≥" + strconv.FormatFloat(t.Ratio, 'g', -1, 64)
	}
}

func (t Target) met(ratio float64) bool {
	if t.AtMost {
		return ratio <= t.Ratio
	}
	return ratio >= t.Ratio
}

type row struct {
	quantity Quantity
	level    int
	medians  []float64 // per setup
	failed   []bool    // per setup: some round saw failures
}

// NewSweep starts the table of subject against peers (at least one; the first is the
// one whose twin measures the noise).
func NewSweep(b testing.TB, subject string, peers ...string) *Sweep {
	if len(peers) == 0 {
		b.Fatal("a sweep needs a peer")
	}
	return &Sweep{b: b, subject: subject, peers: peers, baseline: Baseline()}
}

// Baseline is the git revision BENCH_BASELINE names, or "": the benchmark then runs its
// subject built at that revision (topology.BuildAt) as the last setup, in place of the
// first peer's twin.
func Baseline() string { return os.Getenv("BENCH_BASELINE") }

// Setups is how many setups each round measures: the subject, the peers, then the
// twin. Setup 0 is the subject, 1 to len(peers) the peers in order, the last the twin
// (or the baseline).
func (s *Sweep) Setups() int { return len(s.peers) + 2 }

// Name is setup i's name in the table and in failures.
func (s *Sweep) Name(i int) string {
	switch {
	case i == 0:
		return s.subject
	case i <= len(s.peers):
		return s.peers[i-1]
	case s.baseline != "":
		return s.subject + "@" + s.baseline
	default:
		return s.peers[0] + " #2"
	}
}

// Measure runs round on every setup, alternating, for rounds rounds, and adds a row per
// quantity at level (concurrent clients or connections). round returns a value per
// quantity; an error says the round saw failures (its values count only what
// succeeded): the benchmark fails, and the table marks the value.
func (s *Sweep) Measure(level, rounds int, quantities []Quantity, round func(setup int) ([]float64, error)) {
	s.b.Helper()
	samples := make([][][]float64, s.Setups()) // setup, quantity, round
	failed := make([]bool, s.Setups())
	for range rounds {
		for setup := range samples {
			values, err := round(setup)
			if err != nil {
				failed[setup] = true
				s.b.Errorf("%s at %d, %s: %v", quantities[0].Name, level, s.Name(setup), err)
			}
			if len(values) != len(quantities) {
				s.b.Fatalf("%s at %d, %s: %d values for %d quantities", quantities[0].Name, level, s.Name(setup), len(values), len(quantities))
			}
			if samples[setup] == nil {
				samples[setup] = make([][]float64, len(quantities))
			}
			for q, v := range values {
				samples[setup][q] = append(samples[setup][q], v)
			}
		}
	}
	for q, quantity := range quantities {
		r := row{quantity: quantity, level: level, failed: failed}
		for setup := range samples {
			r.medians = append(r.medians, median(samples[setup][q]))
		}
		s.rows = append(s.rows, r)
	}
}

// Note adds a line under the table: how a peer was set up, what a level means.
func (s *Sweep) Note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// Print writes the table and its notes to standard output, where `go test -bench`
// shows it whether or not the run is verbose.
func (s *Sweep) Print() {
	fmt.Print(s.String())
}

// String is the table: per row the setups' medians (marked ! where a round failed),
// the subject's ratio to each peer, the targets, the verdict and the noise.
func (s *Sweep) String() string {
	var out strings.Builder
	// Numbers align right; the measure's name, padded here, reads from the left.
	width := len("measure")
	for _, r := range s.rows {
		width = max(width, utf8.RuneCountInString(r.quantity.Name))
	}
	name := func(n string) string { return n + strings.Repeat(" ", width-utf8.RuneCountInString(n)) }
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{name("measure"), "clients"}
	for i := range len(s.peers) + 1 {
		header = append(header, s.Name(i))
	}
	for _, p := range s.peers {
		header = append(header, "ours/"+p)
	}
	twin := s.Setups() - 1
	last, lastOver := "noise "+s.Name(1)+"/"+s.Name(twin), 1
	if s.baseline != "" {
		last, lastOver = "ours/ours@"+s.baseline, 0
	}
	header = append(header, "target", "verdict", last)
	fmt.Fprintln(w, strings.Join(header, "\t")+"\t")
	for _, r := range s.rows {
		cells := []string{name(r.quantity.Name), strconv.Itoa(r.level)}
		for i := range len(s.peers) + 1 {
			cells = append(cells, value(r.medians[i], r.failed[i]))
		}
		var targets []string
		verdict := "-"
		for p := range s.peers {
			ratio := r.medians[0] / r.medians[p+1]
			cells = append(cells, formatRatio(ratio))
			var t Target
			if p < len(r.quantity.Targets) {
				t = r.quantity.Targets[p]
			}
			targets = append(targets, t.String())
			switch {
			case t.Ratio == 0:
			case !t.met(ratio):
				verdict = "MISS"
			case verdict == "-":
				verdict = "ok"
			}
		}
		cells = append(cells, strings.Join(targets, " "), verdict, formatRatio(r.medians[lastOver]/r.medians[twin]))
		fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
	}
	w.Flush()
	for _, n := range s.notes {
		fmt.Fprintf(&out, "  %s\n", n)
	}
	if s.baseline != "" {
		fmt.Fprintf(&out, "  BENCH_BASELINE: the last column is ours against ours built at %s, in the same rounds; this run has no noise column.\n", s.baseline)
	}
	fmt.Fprintln(&out, "  ! marks a median measured with failures (the benchmark fails).")
	return "\n" + out.String()
}

// formatRatio formats a ratio of medians for the table; "-" for one whose divisor was
// 0 (a count such as retransmissions may be none), which has no ratio.
func formatRatio(r float64) string {
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

// value formats a median for the table, with ! when it was measured with failures.
func value(v float64, failed bool) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	if v < 100 {
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if failed {
		s += "!"
	}
	return s
}

// Levels is the concurrency levels a sweep runs: all of them, or those BENCH_LEVELS
// lists ("16", "1,64" or "1 64"), for a shorter run while developing.
func Levels(b testing.TB, all ...int) []int {
	env := os.Getenv("BENCH_LEVELS")
	if env == "" {
		return all
	}
	var levels []int
	for f := range strings.FieldsFuncSeq(env, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_LEVELS=%q: %q is not a positive number of clients", env, f)
		}
		levels = append(levels, n)
	}
	return levels
}

// Rounds is how many rounds each measurement alternates: def, or BENCH_ROUNDS.
func Rounds(b testing.TB, def int) int {
	env := os.Getenv("BENCH_ROUNDS")
	if env == "" {
		return def
	}
	n, err := strconv.Atoi(env)
	if err != nil || n < 1 {
		b.Fatalf("BENCH_ROUNDS=%q: not a positive number", env)
	}
	return n
}
