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
//     handoffs (SIGTERM) and 20 crashes (SIGKILL, namespace deleted), p50 and p99,
//     and the median of each phase (timeline); the client tries every 20 ms;
//   - API writes (every write verb, every resource) and reads (GET) per second per
//     router at steady state, from the API server's own apiserver_request_total,
//     over 20 s with one router and nothing else writing.
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
		before, start := apiRequests(b, r), time.Now()
		time.Sleep(20 * time.Second)
		after, took := apiRequests(b, r), time.Since(start).Seconds()
		writes, reads := float64(after.writes-before.writes)/took, float64(after.reads-before.reads)/took
		b.ReportMetric(writes, "writes/s")
		b.ReportMetric(reads, "reads/s")
		b.Logf("API requests at steady state, per router (two pods): %.2f writes/s, %.2f reads/s", writes, reads)
		for _, f := range []fault{graceful, crash} {
			var tls []timeline
			for range failovers {
				tls = append(tls, r.failover(f))
			}
			took := phase(tls, func(tl timeline) time.Duration { return tl.served })
			p50, p99 := took[len(took)/2], took[len(took)*99/100]
			b.ReportMetric(p50.Seconds(), f.name+"-p50-s")
			b.ReportMetric(p99.Seconds(), f.name+"-p99-s")
			b.Logf("%s, %d failovers: fault → first connection p50 %v, p99 %v (all: %v)", f.name, failovers, p50, p99, took)
			median := func(of func(timeline) time.Duration) time.Duration {
				return phase(tls, of)[len(tls)/2].Round(time.Millisecond)
			}
			b.Logf("%s, medians: last renewal %v before the fault; fault → Lease taken %v; → addresses held and announced +%v; → first connection +%v",
				f.name, median(func(tl timeline) time.Duration { return tl.sinceRenewal }), median(func(tl timeline) time.Duration { return tl.acquired }),
				median(func(tl timeline) time.Duration { return tl.takeover }), median(timeline.client))
		}
	}
	r.assertLeavesNothing()
}

// phase is one phase of every timeline, sorted.
func phase(tls []timeline, of func(timeline) time.Duration) []time.Duration {
	var d []time.Duration
	for _, tl := range tls {
		d = append(d, of(tl))
	}
	slices.Sort(d)
	return d
}

// requestCount is the API server's apiserver_request_total summed over the write verbs
// and over GET.
type requestCount struct{ writes, reads int }

func apiRequests(b *testing.B, r *router) requestCount {
	b.Helper()
	raw, err := r.client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var writes, reads float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		for _, verb := range []string{`verb="POST"`, `verb="PUT"`, `verb="PATCH"`, `verb="DELETE"`} {
			if strings.Contains(line, verb) {
				writes += v
			}
		}
		if strings.Contains(line, `verb="GET"`) {
			reads += v
		}
	}
	return requestCount{int(writes), int(reads)}
}
