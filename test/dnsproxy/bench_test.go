package dnsproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/ratio"
	"github.com/egress-router/egress-router/test/topology"
)

// BenchmarkDNSProxyVsHAProxy measures egress-dns-proxy and Debian's HAProxy in TCP mode
// side by side, in one run, on the same topology: both run in the router pod with the
// same lines and bind the reserved source; the client and servers are the same. Run by
// `make bench-dns`; it measures once whatever b.N is, and prints ratios (two shared
// cores make absolute numbers meaningless on their own). Each rate is the median of
// several rounds that alternate the two proxies, so a burst of other load on the
// machine lands on both sides or on neither, instead of on one of them.
//
// Targets (issue 5): bulk throughput ≥ 1.5×, new connections/s ≥ 1.0×, 16-connection
// request/response ≥ 0.9×, 2,000 concurrent connections held without errors.
func BenchmarkDNSProxyVsHAProxy(b *testing.B) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		b.Skip("haproxy is not installed (scripts/install-deps.sh bench)")
	}
	const (
		iperfPort, acceptPort, echoPort = 5201, 7000, 7001
		haproxyOffset                   = 10000 // HAProxy listens on each line's port + this
		dest                            = "203.0.113.25"
	)
	lines := []string{fmt.Sprintf("%d %s", iperfPort, dest), fmt.Sprintf("%d %s", acceptPort, dest), fmt.Sprintf("%d %s", echoPort, dest)}
	r := newDNSRouter(b, lines...)
	for _, n := range []ns.NetNS{r.tp.Client, r.tp.Pod.NS} {
		r.tp.Exec(b, n, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1").Run(b)
	}
	serveIperf(b, r.tp, iperfPort)
	// One line, then the close: the cost measured is the connection's setup and teardown.
	topology.Serve(b, r.tp.Dest, "tcp", fmt.Sprintf("%s:%d", dest, acceptPort), func(c net.Conn) { io.WriteString(c, "hi\n") })
	// An echo until the client's FIN.
	topology.Serve(b, r.tp.Dest, "tcp", fmt.Sprintf("%s:%d", dest, echoPort), func(c net.Conn) { io.Copy(c, c) })
	ours := r.start(b, lines, "-max-connections", "5000", "-max-connections-per-client", "0")
	theirs := startHAProxy(b, r.tp, haproxyOffset, dest, iperfPort, acceptPort, echoPort)

	pod := r.tp.Pod.Addr.Addr().String()
	type result struct{ ours, theirs float64 }
	measure := func(n int, f func(port int) float64, port int) result {
		m := ratio.Medians(n, func() float64 { return f(port) }, func() float64 { return f(port + haproxyOffset) })
		return result{m[0], m[1]}
	}
	bulk := measure(3, func(port int) float64 { return iperfGbps(b, r.tp, pod, port) }, iperfPort)
	rate := measure(9, func(port int) float64 { return connectionsPerSecond(b, r.tp.Client, pod, port) }, acceptPort)
	rr := measure(5, func(port int) float64 { return roundTripsPerSecond(b, r.tp.Client, pod, port) }, echoPort)
	const held = 2000
	memOurs := bytesPerHeldConnection(b, r.tp.Client, pod, echoPort, held, ours)
	memTheirs := bytesPerHeldConnection(b, r.tp.Client, pod, echoPort+haproxyOffset, held, theirs)

	report := []struct {
		what, unit string
		r          result
		target     float64
	}{
		{"bulk throughput", "Gbit/s", bulk, 1.5},
		{"new connections", "conn/s", rate, 1.0},
		{"request/response, 16 connections", "round trips/s", rr, 0.9},
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-34s %14s %14s %7s %7s\n", "", "egress-dns-proxy", "haproxy", "ratio", "target")
	for _, m := range report {
		ratio := m.r.ours / m.r.theirs
		verdict := "ok"
		if ratio < m.target {
			verdict = "BELOW"
		}
		fmt.Fprintf(&out, "%-34s %14.2f %14.2f %6.2fx %5.1fx %s  (%s)\n", m.what, m.r.ours, m.r.theirs, ratio, m.target, verdict, m.unit)
		b.ReportMetric(ratio, strings.ReplaceAll(m.what, " ", "_")+"_ratio")
	}
	fmt.Fprintf(&out, "%-34s %14.0f %14.0f bytes of RSS per connection, %d held without errors\n", "memory per held connection", memOurs, memTheirs, held)
	b.ReportMetric(memOurs, "bytes_per_held_conn")
	b.Log(out.String())
	fmt.Println(out.String())
}

// serveIperf runs an iperf3 server in the destination namespace until the end.
func serveIperf(b *testing.B, tp *topology.Topology, port int) {
	cmd := exec.Command("nsenter", "--net="+tp.Dest.Path(), "--", "iperf3", "-s", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond)
}

// iperfGbps runs a 4-second iperf3 test (first second omitted) to pod:port.
func iperfGbps(b *testing.B, tp *topology.Topology, pod string, port int) float64 {
	out := tp.Exec(b, tp.Client, "iperf3", "-c", pod, "-p", fmt.Sprint(port), "-t", "4", "-O", "1", "-J").Run(b)
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.End.SumReceived.BitsPerSecond == 0 {
		b.Fatalf("iperf3 through port %d: %v\n%s", port, err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}

// startHAProxy runs HAProxy in TCP mode in the pod: each port + offset to dest:port,
// from the reserved address, as egress-dns-proxy does.
func startHAProxy(b *testing.B, tp *topology.Topology, offset int, dest string, ports ...int) *proxyproc.Process {
	var conf strings.Builder
	conf.WriteString("global\n  maxconn 9000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n")
	for _, p := range ports {
		fmt.Fprintf(&conf, "\nlisten line%d\n  bind :%d\n  server s %s:%d source %s\n", p, p+offset, dest, p, topology.Reserved.Addr())
	}
	file := filepath.Join(b.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(conf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	p := (&proxyproc.Process{}).Run(b, tp.Pod.NS, "haproxy", "-db", "-f", file)
	p.WaitUntil(b, 10*time.Second, "haproxy to listen", func() bool {
		_, err := topology.AskSource(tp.Client, "tcp", fmt.Sprintf("%s:%d", tp.Pod.Addr.Addr(), ports[1]+offset))
		return err == nil
	})
	return p
}

// inClient runs work on workers goroutines whose sockets are made in the client
// namespace (each locks its thread there for the whole run).
func inClient(b *testing.B, client ns.NetNS, workers int, work func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if err := client.Do(func(ns.NetNS) error { work(); return nil }); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// measureFor is one round of the connection and request/response tests.
const measureFor = time.Second

// connectionsPerSecond: 8 clients connect, read the greeting, wait for the close, for
// measureFor; every failure is an error.
func connectionsPerSecond(b *testing.B, client ns.NetNS, pod string, port int) float64 {
	var done, failed atomic.Int64
	addr := net.JoinHostPort(pod, fmt.Sprint(port))
	deadline := time.Now().Add(measureFor)
	inClient(b, client, 8, func() {
		buf := make([]byte, 16)
		for time.Now().Before(deadline) {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				failed.Add(1)
				continue
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			n, _ := io.ReadFull(c, buf[:3])
			c.Close()
			if n != 3 {
				failed.Add(1)
				continue
			}
			done.Add(1)
		}
	})
	if failed.Load() > 0 {
		b.Errorf("port %d: %d of %d connections failed", port, failed.Load(), failed.Load()+done.Load())
	}
	return float64(done.Load()) / measureFor.Seconds()
}

// roundTripsPerSecond: 16 connections each send 64 bytes and wait for their echo, in a
// loop, for measureFor.
func roundTripsPerSecond(b *testing.B, client ns.NetNS, pod string, port int) float64 {
	var done atomic.Int64
	addr := net.JoinHostPort(pod, fmt.Sprint(port))
	deadline := time.Now().Add(measureFor)
	inClient(b, client, 16, func() {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		msg, buf := make([]byte, 64), make([]byte, 64)
		for time.Now().Before(deadline) {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
				return
			}
			done.Add(1)
		}
	})
	return float64(done.Load()) / measureFor.Seconds()
}

// bytesPerHeldConnection opens n connections through port, checks each relays a round
// trip, and returns how much the proxy's resident memory grew per connection.
func bytesPerHeldConnection(b *testing.B, client ns.NetNS, pod string, port, n int, proxy *proxyproc.Process) float64 {
	before := proxy.ResidentBytes(b)
	addr := net.JoinHostPort(pod, fmt.Sprint(port))
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var failures int
	inClient(b, client, 1, func() {
		buf := make([]byte, 4)
		for range n {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				failures++
				continue
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("ping")); err != nil {
				failures++
			} else if _, err := io.ReadFull(c, buf); err != nil {
				failures++
			}
		}
	})
	if failures > 0 {
		b.Errorf("port %d: %d of %d held connections failed", port, failures, n)
	}
	return float64(proxy.ResidentBytes(b)-before) / float64(n)
}
