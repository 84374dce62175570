package httpproxy

import (
	"math"
	"testing"
)

// TestLatencies reads wrk's --latency output as wrk 4.1 prints it (µs and ms, beside
// thread stats whose percentages are no percentiles), and finds nothing in output
// without a latency distribution.
func TestLatencies(t *testing.T) {
	const out = `Running 1s test @ http://10.128.0.20:8080/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   626.00us  370.51us   5.00ms   85.50%
    Req/Sec    11.20k   400.00     12.00k    99.00%
  Latency Distribution
     50%  542.00us
     75%  830.00us
     90%    1.26ms
     99%    3.00ms
  27428 requests in 1.10s, 2.51MB read
Requests/sec:  24934.55
`
	p50, p99, ok := latencies(out)
	if !ok || math.Abs(p50-0.542) > 1e-9 || math.Abs(p99-3) > 1e-9 {
		t.Errorf("latencies: p50 %v ms, p99 %v ms, %v; want 0.542, 3, true", p50, p99, ok)
	}
	if _, _, ok := latencies("  Thread Stats   Avg\n    Latency   1.00ms  0.10ms   2.00ms   99.00%\n"); ok {
		t.Error("latencies read a percentile from output that has no distribution")
	}
}
