package httpproxy

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/cpulimit"
	"github.com/egress-router/egress-router/test/cpustat"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/ratio"
	"github.com/egress-router/egress-router/test/tcpstat"
	"github.com/egress-router/egress-router/test/topology"
)

// The destination ports of the benchmark, on every setup's destination address: a
// lean web server, an endless stream (CONNECT bulk), an echo (idle tunnels).
const webPort, streamPort, holdPort = 8080, 8443, 9443

// BenchmarkHTTPProxyVsPeers measures egress-http-proxy against Debian's Squid and
// Stripe's Smokescreen (a Go egress proxy built for SSRF safety, the closest peer in
// spirit), side by side in one run on the same topology (make bench-http): all run in
// the router pod, allow the destinations' range, and serve the same clients and
// servers. It sweeps 1 to 256 clients over keep-alive requests (wrk: requests/s, p99,
// and p50 to tell a wide tail from a slow proxy) and CONNECT bulk, then measures the
// memory each holds per idle tunnel, and prints one table (ratio.Sweep). The noise is
// Squid against a second, identical Squid: as in bench-dns, a peer's twin, which
// changes with nothing we change. BENCH_LEVELS and BENCH_ROUNDS run a subset;
// BENCH_CPU_LIMIT holds each proxy to a share of a core; BENCH_BASELINE=<git revision>
// runs ours built at that revision in the twin's place, to measure a change.
//
// Targets (issue 15): keep-alive requests/s ≥ 2× Squid's and ≥ 3× Smokescreen's with a
// p99 no higher than either's, CONNECT bulk ≥ 1.5× both.
func BenchmarkHTTPProxyVsPeers(b *testing.B) {
	for _, tool := range []string{"squid", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed (scripts/install-deps.sh bench)", tool)
		}
	}
	const (
		held                                          = 2000 // idle tunnels for the memory figure
		ourPort, squidPort, smokescreenPort, twinPort = 8080, 3128, 4750, 3129
	)
	r := newHTTPRouter(b, []string{"203.0.113.0/24"}, "-connect-ports", fmt.Sprintf("443,%d,%d", streamPort, holdPort),
		"-max-connections", "10000", "-max-connections-per-client", "0")
	for _, n := range []ns.NetNS{r.tp.Client, r.tp.Pod.NS} {
		r.tp.Exec(b, n, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1").Run(b)
	}
	sweep := ratio.NewSweep(b, "egress-http-proxy", "Squid", "Smokescreen")
	origin := serveOrigin(b, r, sweep.Setups())
	topology.Serve(b, r.tp.Dest, "tcp", fmt.Sprintf(":%d", streamPort), stream)
	topology.Serve(b, r.tp.Dest, "tcp", fmt.Sprintf(":%d", holdPort), func(c net.Conn) { io.Copy(c, c) })

	at := func(port int) string { return net.JoinHostPort(r.tp.Pod.Addr.Addr().String(), strconv.Itoa(port)) }
	type setup struct {
		addr   string // the proxy, as the client dials it
		proxy  *proxyproc.Process
		script string // wrk's, for requests to the setup's destination
	}
	setups := []setup{
		{addr: at(ourPort), proxy: r.proxy},
		{addr: at(squidPort), proxy: startSquid(b, r, squidPort, streamPort, holdPort)},
		{addr: at(smokescreenPort), proxy: startSmokescreen(b, r, smokescreenPort)},
		{addr: at(twinPort)},
	}
	if rev := ratio.Baseline(); rev != "" {
		setups[3].proxy = r.startProxy(b, topology.BuildAt(b, rev, httpProxyPkg), twinPort, 9091)
	} else {
		setups[3].proxy = startSquid(b, r, twinPort, streamPort, holdPort)
	}
	for i := range setups {
		waitRelaying(b, r, setups[i].proxy, setups[i].addr, destination(i))
		setups[i].script = wrkScript(b, destination(i))
	}

	cores := cpulimit.Cores(b)
	if cores > 0 {
		for _, s := range setups {
			s.proxy.HoldCPU(b, cores)
		}
	}
	levels := ratio.Levels(b, 1, 16, 64, 256)
	for _, n := range levels {
		sweep.Measure(n, ratio.Rounds(b, 5), []ratio.Quantity{
			{Name: "keep-alive requests/s", Targets: []ratio.Target{ratio.AtLeast(2), ratio.AtLeast(3)}},
			{Name: "keep-alive p99 ms", Targets: []ratio.Target{ratio.AtMost(1), ratio.AtMost(1)}},
			{Name: "  p50 ms"},
			{Name: "  proxy CPU µs per request"},
			{Name: "  cores idle %"},
		}, func(i int) ([]float64, error) {
			return wrk(b, r, setups[i].proxy, setups[i].addr, setups[i].script, n, &origin.served[i])
		})
	}
	var floor float64 // requests/s at 1 client without a proxy
	if slices.Contains(levels, 1) {
		floor = ratio.Medians(ratio.Rounds(b, 5), func() float64 { return requestsWithoutProxy(b, r, &origin.served[0]) })[0]
	}
	for _, n := range levels {
		sweep.Measure(n, ratio.Rounds(b, 3), []ratio.Quantity{
			{Name: "CONNECT bulk Gbit/s", Targets: []ratio.Target{ratio.AtLeast(1.5), ratio.AtLeast(1.5)}},
			{Name: "CONNECT bulk retransmitted %"},
			{Name: "  proxy CPU ms per GB"},
			{Name: "  cores idle %"},
		}, func(i int) ([]float64, error) {
			return connectGbps(r, setups[i].proxy, setups[i].addr, destination(i), n)
		})
	}
	sweep.Measure(held, 1, []ratio.Quantity{{Name: "memory per idle tunnel, KiB"}},
		func(i int) ([]float64, error) {
			return kibPerIdleTunnel(b, r, setups[i].addr, destination(i), held, setups[i].proxy)
		})

	sweep.Note("clients: wrk's connections (-c, threads min(clients, 2)); CONNECT: that many tunnels, each downloading from its own stream.")
	sweep.Note("medians of alternating rounds (%d for requests, %d for bulk, 1 for memory), %d s each (bulk %v measured after %v); %d cores shared by clients, proxies and servers.",
		ratio.Rounds(b, 5), ratio.Rounds(b, 3), int(wrkFor.Seconds()), bulkFor, bulkWarmUp, runtime.NumCPU())
	sweep.Note("Squid %s: as the proxy is set up (same range, CONNECT ports, tcp_outgoing_address the reserved address, no cache, no access log).", proxyproc.Version("squid", "-v"))
	sweep.Note("Smokescreen v0.1.0 (test/tools/smokescreen): --allow-range the destinations' range, --deny-range the rest. It has no way to bind a source address,")
	sweep.Note("  so the pod routes the destinations' range via net1 with src the reserved address; it logs a line per request (no flag turns that off), to a file.")
	sweep.Note("each setup has its own destination address, which admits only the reserved source and counts the requests it answers: a round fails unless")
	sweep.Note("  it answered every one wrk completed.")
	if floor > 0 {
		sweep.Note("no proxy: 1 client in the router pod, straight to the origin, makes %.0f requests/s (%.0f µs each): the floor under every", floor, 1e6/floor)
		sweep.Note("  setup's requests at 1 client, to which a proxy adds its own work and a hop.")
	}
	sweep.Note("proxy CPU: the time the proxy's threads (Squid's helpers' included) ran in a round, per request (CONNECT: in the measured seconds, per GB received);")
	sweep.Note("  cores idle: the share of the cores' time no task ran:")
	sweep.Note("  %s.", cpustat.Why)
	sweep.Note("retransmitted: of the segments the stream server and the proxy sent in the measured seconds, the share sent again:")
	sweep.Note("  %s.", tcpstat.Why)
	sweep.Note("memory: growth of the resident memory of the proxy's processes with %d tunnels open 2 s, each then echoing a byte; no target (issue 4's was ≤ 40 KiB).", held)
	if cores > 0 {
		sweep.Note("each proxy held to %g of a core (BENCH_CPU_LIMIT):", cores)
		sweep.Note("  %s.", cpulimit.Why)
	}
	if ratio.Baseline() == "" {
		sweep.Note("noise: Squid against a second, identical Squid in the same rounds.")
	}
	sweep.Print()
}

// destination is setup's destination address: each has its own, so the origin can
// count what each relayed.
func destination(setup int) string { return fmt.Sprintf("203.0.113.%d", 100+setup) }

// origin is the lean web server every setup's requests reach.
type origin struct {
	served []atomic.Int64 // requests answered, per setup (by the address they reached)
}

// serveOrigin answers every request head on webPort (destination namespace) with a
// fixed small response, keeping the connection: an origin cheap enough that the
// proxies, not the origin, set the pace on two shared cores.
func serveOrigin(b *testing.B, r *httpRouter, setups int) *origin {
	o := &origin{served: make([]atomic.Int64, setups)}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	topology.Serve(b, r.tp.Dest, "tcp", fmt.Sprintf(":%d", webPort), func(c net.Conn) {
		setup := int(c.LocalAddr().(*net.TCPAddr).IP.To4()[3]) - 100
		if setup < 0 || setup >= setups {
			return
		}
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) == 2 { // the empty line ending a head
				if _, err := c.Write(resp); err != nil {
					return
				}
				o.served[setup].Add(1)
			}
		}
	})
	return o
}

// stream writes an endless stream to the client until it closes.
func stream(c net.Conn) {
	chunk := make([]byte, 256<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// waitRelaying waits until a GET through proxy reaches the origin at dest.
func waitRelaying(b *testing.B, r *httpRouter, p *proxyproc.Process, proxy, dest string) {
	p.WaitUntil(b, 15*time.Second, proxy+" to relay", func() bool {
		c, err := r.dialFromClient(b.Context(), "tcp", proxy)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET http://%s:%d/ HTTP/1.1\r\nHost: %s:%d\r\n\r\n", dest, webPort, dest, webPort)
		line, _ := bufio.NewReader(c).ReadString('\n')
		return len(line) > 12 && line[9:12] == "200"
	})
}

// wrkFor is one round of wrk.
const wrkFor = time.Second

var (
	requestsLine = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(ms|s)`)
	// wrk's "Latency Distribution": a percentile, its value and unit.
	percentileLine = regexp.MustCompile(`\s(50|99)%\s+([0-9.]+)(us|ms|s)`)
	errorLines     = regexp.MustCompile(`Non-2xx or 3xx responses: \d+|Socket errors: .*`)
)

// wrkScript writes the wrk script that makes each request an absolute-form GET to the
// origin at dest, as a client of a forward proxy sends it.
func wrkScript(b *testing.B, dest string) string {
	target := fmt.Sprintf("%s:%d", dest, webPort)
	script := filepath.Join(b.TempDir(), "proxy.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, "wrk.path = %q\nwrk.headers[\"Host\"] = %q\n", "http://"+target+"/", target), 0o644); err != nil {
		b.Fatal(err)
	}
	return script
}

// wrk runs wrk in the client namespace through the proxy at addr with n keep-alive
// connections and script's requests, and returns requests/s, the p99 and p50 latencies
// in milliseconds, the proxy's CPU time per request in µs and the share of the cores
// left idle (cpustat; both read around the whole round), with completed's error.
func wrk(b *testing.B, r *httpRouter, proxy *proxyproc.Process, addr, script string, n int, served *atomic.Int64) ([]float64, error) {
	before := served.Load()
	var out string
	use, err := cpustat.Measure(proxy.CPUTime, func() {
		out = r.tp.Exec(b, r.tp.Client, "wrk", "-t", strconv.Itoa(min(n, 2)), "-c", strconv.Itoa(n), "-d", wrkFor.String(),
			"--latency", "-s", script, "http://"+addr+"/").Run(b)
	})
	if err != nil {
		b.Fatal(err)
	}
	p50, p99, ok := latencies(out)
	if !ok {
		b.Fatalf("cannot read wrk's p50 and p99:\n%s", out)
	}
	rate, err := completed(b, out, served, before)
	return []float64{rate, p99, p50, use.MicrosecondsPer(rate * wrkFor.Seconds()), use.IdlePercent}, err
}

// latencies reads the p50 and p99 of wrk's --latency output, in milliseconds; false
// unless both are there.
func latencies(out string) (p50, p99 float64, ok bool) {
	ms := map[string]float64{}
	for _, m := range percentileLine.FindAllStringSubmatch(out, -1) {
		ms[m[1]] = seconds(m[2], m[3]) * 1000
	}
	return ms["50"], ms["99"], len(ms) == 2
}

// requestsWithoutProxy runs one round of wrk with one keep-alive connection in the
// router pod, straight to the first setup's destination (the pod routes the
// destinations' range, for Smokescreen), and returns the requests/s; served counts
// that destination's answers.
func requestsWithoutProxy(b *testing.B, r *httpRouter, served *atomic.Int64) float64 {
	before := served.Load()
	out := r.tp.Exec(b, r.tp.Pod.NS, "wrk", "-t", "1", "-c", "1", "-d", wrkFor.String(),
		fmt.Sprintf("http://%s:%d/", destination(0), webPort)).Run(b)
	rate, err := completed(b, out, served, before)
	if err != nil {
		b.Fatalf("wrk without a proxy: %v", err)
	}
	return rate
}

// completed reads from wrk's output the requests/s it completed; an error when wrk
// counted errors or the origin answered fewer requests than wrk completed (served
// counts them, from before).
func completed(b *testing.B, out string, served *atomic.Int64, before int64) (float64, error) {
	done := requestsLine.FindStringSubmatch(out)
	if done == nil {
		b.Fatalf("cannot read wrk's requests:\n%s", out)
	}
	requests, _ := strconv.ParseFloat(done[1], 64)
	rate := requests / seconds(done[2], done[3])
	if e := errorLines.FindAllString(out, -1); e != nil {
		return rate, fmt.Errorf("wrk: %q", e)
	}
	if got := served.Load() - before; got < int64(requests) {
		return rate, fmt.Errorf("the origin answered %d requests, wrk completed %.0f", got, requests)
	}
	return rate, nil
}

// seconds reads a wrk duration: a number and its unit.
func seconds(number, unit string) float64 {
	v, _ := strconv.ParseFloat(number, 64)
	switch unit {
	case "us":
		return v / 1e6
	case "ms":
		return v / 1e3
	}
	return v
}

// openTunnel opens a CONNECT tunnel through proxy from the client namespace; an
// answer other than 200 is an error.
func openTunnel(r *httpRouter, proxy, target string) (net.Conn, error) {
	c, code, err := r.connect(proxy, target)
	if err == nil && code != 200 {
		err = fmt.Errorf("CONNECT answer %d", code)
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	return c, nil
}

// openTunnels opens n tunnels through proxy to target, 64 at a time; it returns those
// that opened, with how many failed and the first error.
func openTunnels(r *httpRouter, proxy, target string, n int) ([]net.Conn, int, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var first error
	sem := make(chan struct{}, 64)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := openTunnel(r, proxy, target)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				first = cmp.Or(first, err)
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	return conns, n - len(conns), first
}

// bulkWarmUp and bulkFor are one round of CONNECT bulk: the tunnels are open, then
// the bytes of the next bulkFor are counted after bulkWarmUp.
const bulkWarmUp, bulkFor = 500 * time.Millisecond, 2 * time.Second

// connectGbps downloads through n CONNECT tunnels from the stream server at dest via
// the proxy p at addr, and returns the throughput the client received, the share of the
// segments its senders (the stream server and the proxy) sent again meanwhile, the
// proxy's CPU time per gigabyte received, and the cores' idle share; an error when a
// tunnel failed.
func connectGbps(r *httpRouter, p *proxyproc.Process, addr, dest string, n int) ([]float64, error) {
	conns, failed, first := openTunnels(r, addr, fmt.Sprintf("%s:%d", dest, streamPort), n)
	var received, broken atomic.Int64
	var stopped atomic.Bool
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Go(func() {
			buf := make([]byte, 64<<10)
			for {
				k, err := c.Read(buf)
				received.Add(int64(k))
				if err != nil {
					if !stopped.Load() {
						broken.Add(1)
					}
					return
				}
			}
		})
	}
	time.Sleep(bulkWarmUp)
	retransmitted, err := tcpstat.Watch(r.tp.Dest, r.tp.Pod.NS) // the senders
	from, start := received.Load(), time.Now()
	use, useErr := cpustat.Measure(p.CPUTime, func() { time.Sleep(bulkFor) })
	moved := float64(received.Load() - from)
	values := []float64{moved * 8 / time.Since(start).Seconds() / 1e9, 0, 0, use.IdlePercent}
	if moved > 0 {
		values[2] = float64(use.CPU.Milliseconds()) / (moved / 1e9)
	}
	if err == nil {
		values[1], err = retransmitted()
	}
	err = cmp.Or(err, useErr)
	stopped.Store(true)
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	if failed > 0 || broken.Load() > 0 {
		return values, fmt.Errorf("%d of %d tunnels failed to open (%v), %d broke", failed, n, first, broken.Load())
	}
	return values, err
}

// kibPerIdleTunnel opens n idle tunnels through proxyAddr (proxy) to the echo server
// at dest, checks each carries a byte both ways after a pause, and returns the proxy's
// resident memory per tunnel in KiB; an error when some failed.
func kibPerIdleTunnel(b *testing.B, r *httpRouter, proxyAddr, dest string, n int, proxy *proxyproc.Process) ([]float64, error) {
	before := proxy.ResidentBytes(b)
	conns, failed, first := openTunnels(r, proxyAddr, fmt.Sprintf("%s:%d", dest, holdPort), n)
	time.Sleep(2 * time.Second)
	kib := []float64{float64(proxy.ResidentBytes(b)-before) / 1024 / float64(n)}
	for _, c := range conns {
		if !topology.Echoes(c, "x") {
			failed, first = failed+1, cmp.Or(first, errors.New("a tunnel no longer echoes"))
		}
		c.Close()
	}
	if failed > 0 {
		return kib, fmt.Errorf("%d of %d idle tunnels failed (%v)", failed, n, first)
	}
	return kib, nil
}
