// Package ratio is how the benchmarks measure: setups side by side in one run,
// alternating, reported as the ratios of their medians, since absolute figures on a
// shared machine mean little.
package ratio

import (
	"slices"
	"testing"
)

// Medians runs each measurement once per round, alternating, and returns the median
// of each.
func Medians(n int, measure ...func() float64) []float64 {
	samples := make([][]float64, len(measure))
	for range n {
		for i, m := range measure {
			samples[i] = append(samples[i], m())
		}
	}
	medians := make([]float64, len(measure))
	for i, s := range samples {
		medians[i] = median(s)
	}
	return medians
}

// median of samples (the upper one of an even count); it sorts samples.
func median(samples []float64) float64 {
	slices.Sort(samples)
	return samples[len(samples)/2]
}

// Percent is part's share of whole, in percent: of two counters' growth over a round
// (retransmitted of sent segments, idle of all cores' time); 0 when whole did not grow.
func Percent(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// Report logs a ratio with its target and records it as the benchmark's metric
// name-ratio.
func Report(b *testing.B, name string, ratio float64, target string) {
	b.Logf("%s: ratio %.2f (target %s)", name, ratio, target)
	b.ReportMetric(ratio, name+"-ratio")
}
