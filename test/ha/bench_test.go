package ha_test

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkHA measures, with the agent's default timers, on this machine:
//   - fault → first successful connection through the new leader, over 20 graceful
//     handoffs (SIGTERM) and 20 crashes (SIGKILL, network gone), p50 and p99;
//   - API writes per second per router at steady state, from the API server's own
//     apiserver_request_total (every write verb, every resource), over 20 s with one
//     router and nothing else writing.
//
// The address is sampled every 20 ms throughout; two holders fail the benchmark, and
// so does anything left behind after the 40 failovers and DEL.
func BenchmarkHA(b *testing.B) {
	const failovers = 20
	r := newRouter(b)
	r.start(0)
	r.start(1)
	for b.Loop() {
		r.waitActive(10*time.Second, -1)
		time.Sleep(2 * time.Second) // past the takeover's events
		before, start := apiWrites(b, r), time.Now()
		time.Sleep(20 * time.Second)
		writes := float64(apiWrites(b, r)-before) / time.Since(start).Seconds()
		b.ReportMetric(writes, "writes/s")
		b.Logf("API writes at steady state: %.2f/s per router", writes)
		for _, f := range []fault{graceful, crash} {
			var took []time.Duration
			for range failovers {
				took = append(took, r.failover(f))
			}
			slices.Sort(took)
			p50, p99 := took[len(took)/2], took[len(took)*99/100]
			b.ReportMetric(p50.Seconds(), f.name+"-p50-s")
			b.ReportMetric(p99.Seconds(), f.name+"-p99-s")
			b.Logf("%s, %d failovers: fault → first connection p50 %v, p99 %v (all: %v)", f.name, failovers, p50, p99, took)
		}
	}
	r.assertLeavesNothing()
}

// apiWrites sums the API server's apiserver_request_total over the write verbs.
func apiWrites(b *testing.B, r *router) int {
	b.Helper()
	raw, err := r.client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		write := false
		for _, verb := range []string{`verb="POST"`, `verb="PUT"`, `verb="PATCH"`, `verb="DELETE"`} {
			write = write || strings.Contains(line, verb)
		}
		if !write {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		total += v
	}
	return int(total)
}
