package plugin

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/ratio"
	"github.com/egress-router/egress-router/test/topology"
)

// The plugin's benchmarks (make bench-plugin). Each measures the plugin and its
// baseline side by side in one run, interleaved round by round, and reports the ratio
// of the medians: on two shared cores only ratios mean anything.

// referenceVersion pins the reference plugins compared against.
const referenceVersion = "v1.9.0"

// buildReferencePlugins builds macvlan and static IPAM from containernetworking/plugins
// into a temporary directory (module cache or proxy; nothing is vendored).
func buildReferencePlugins(b *testing.B) string {
	dir := b.TempDir()
	cmd := exec.Command("go", "install",
		"github.com/containernetworking/plugins/plugins/main/macvlan@"+referenceVersion,
		"github.com/containernetworking/plugins/plugins/ipam/static@"+referenceVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build reference plugins: %v\n%s", err, out)
	}
	return dir
}

// cycle times ADD+DEL of conf on the topology's pod through libcni, in seconds; add
// alone is timed when addOnly.
func cycle(b *testing.B, cni *topology.CNI, tp *topology.Topology, conf []byte, addOnly bool) float64 {
	a := cni.Attach(b, tp.Pod, conf, "net1")
	start := time.Now()
	if _, err := cni.Add(a); err != nil {
		b.Fatalf("ADD: %v", err)
	}
	added := time.Since(start)
	if err := cni.Del(a); err != nil {
		b.Fatalf("DEL: %v", err)
	}
	if addOnly {
		return added.Seconds()
	}
	return time.Since(start).Seconds()
}

// ADD+DEL through libcni: egress-router in redirect mode against macvlan + static
// IPAM giving the same address and route. Target: ratio <= 1.3.
func BenchmarkPluginAddDelVsReference(b *testing.B) {
	tp := topology.New(b)
	cni := tp.CNI(b, topology.Build(b, topology.RouterPlugin), buildReferencePlugins(b))
	ours := routerConf("1.0.0", "egress-bench", topology.Reserved.Addr())
	reference := fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "macvlan-bench", "type": "macvlan", "master": %q, "mode": "bridge",
  "ipam": {"type": "static", "addresses": [{"address": "192.0.2.99/24", "gateway": "192.0.2.1"}],
           "routes": [{"dst": "203.0.113.25/32", "gw": "192.0.2.1"}, {"dst": "203.0.113.26/32", "gw": "192.0.2.1"}]}}`, topology.Master)
	m := ratio.Medians(30, func() float64 { return cycle(b, cni, tp, ours, false) }, func() float64 { return cycle(b, cni, tp, reference, false) })
	b.Logf("ADD+DEL median: egress-router %.1f ms, macvlan+static %.1f ms", m[0]*1000, m[1]*1000)
	ratio.Report(b, "add-del-vs-reference", m[0]/m[1], "<= 1.3")
}

// ADD with 1,000 destination lines against ADD with one, per backend: the rules go in
// one transaction, so the cost must not grow with the lines. Target: ratio <= 2.
func BenchmarkPluginAdd1000LinesVs1(b *testing.B) {
	plugins := topology.Build(b, topology.RouterPlugin)
	for _, backend := range []string{"nftables", "iptables"} {
		b.Run(backend, func(b *testing.B) { add1000Vs1(b, plugins, backend) })
	}
}

func add1000Vs1(b *testing.B, plugins, backend string) {
	tp := topology.New(b)
	cni := tp.CNI(b, plugins)
	{
		conf := func(lines int) []byte {
			var dst []string
			for i := range lines {
				dst = append(dst, fmt.Sprintf("%q", fmt.Sprintf("%d tcp 203.0.113.%d", 1000+i, 1+i%250)))
			}
			return fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "egress-bench", "type": "egress-router", "backend": %q,
  "interfaceArgs": {"master": %q}, "ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "destinations": [%s]}}`,
				backend, topology.Master, strings.Join(dst, ","))
		}
		many, one := conf(1000), conf(1)
		m := ratio.Medians(10, func() float64 { return cycle(b, cni, tp, many, true) }, func() float64 { return cycle(b, cni, tp, one, true) })
		b.Logf("%s ADD median: 1000 lines %.1f ms, 1 line %.1f ms", backend, m[0]*1000, m[1]*1000)
		ratio.Report(b, "add-1000-vs-1-"+backend, m[0]/m[1], "<= 2")
	}
}

// The redirect data path (client -> pod cluster IP -> DNAT/SNAT -> net1 -> gateway ->
// destination) against the same hops routed without NAT: a second pod with a plain
// macvlan from the reference plugin, forwarding, and the gateway routing the client's
// replies back through it. Bulk TCP throughput and new connections per second.
// Target: ratio >= 0.95.
func BenchmarkPluginRedirectVsRoutedPath(b *testing.B) {
	const bulkPort, connPort = 5001, 5002
	tp := topology.New(b)
	cni := tp.CNI(b, topology.Build(b, topology.RouterPlugin), buildReferencePlugins(b))
	router := cni.Attach(b, tp.Pod, fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "egress-bench", "type": "egress-router",
  "interfaceArgs": {"master": %q}, "ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1",
  "destinations": ["%d tcp 203.0.113.25", "%d tcp 203.0.113.25"]}}`, topology.Master, bulkPort, connPort), "net1")
	if _, err := cni.Add(router); err != nil {
		b.Fatalf("ADD router: %v", err)
	}
	plain := tp.AddPod(b)
	plainAddr := "192.0.2.98"
	routed := cni.Attach(b, plain, fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "routed-bench", "type": "macvlan", "master": %q,
  "ipam": {"type": "static", "addresses": [{"address": "%s/24"}], "routes": [{"dst": "203.0.113.25/32", "gw": "192.0.2.1"}]}}`,
		topology.Master, plainAddr), "net1")
	if _, err := cni.Add(routed); err != nil {
		b.Fatalf("ADD routed pod: %v", err)
	}
	b.Cleanup(func() { _ = cni.Del(router); _ = cni.Del(routed) })
	tp.Exec(b, plain.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1").Run(b)
	tp.Exec(b, tp.Client, "ip", "route", "add", "203.0.113.25/32", "via", plain.Addr.Addr().String()).Run(b)
	tp.Exec(b, tp.Gateway, "ip", "route", "add", topology.ClientAddr.Addr().String()+"/32", "via", plainAddr).Run(b)
	tp.Exec(b, tp.Dest, "nft", "insert", "rule", "inet", "dest", "input", "ip", "saddr", topology.ClientAddr.Addr().String(), "accept").Run(b)
	topology.Serve(b, tp.Dest, "tcp", fmt.Sprintf(":%d", bulkPort), func(c net.Conn) { _, _ = io.Copy(c, zeros{}) })
	topology.Serve(b, tp.Dest, "tcp", fmt.Sprintf(":%d", connPort), func(c net.Conn) { _, _ = c.Write([]byte{1}) })

	viaRouter := tp.Pod.Addr.Addr().String()
	const direct = "203.0.113.25" // routed through the plain pod by the client's route
	bulk := func(host string) func() float64 {
		return func() float64 { return bulkThroughput(b, tp.Client, net.JoinHostPort(host, fmt.Sprint(bulkPort))) }
	}
	conns := func(host string) func() float64 {
		return func() float64 { return connectionRate(b, tp.Client, net.JoinHostPort(host, fmt.Sprint(connPort))) }
	}
	// Eleven short rounds each: on shared cores a single long sample measures the
	// neighbours as much as the path.
	m := ratio.Medians(11, bulk(viaRouter), bulk(direct))
	b.Logf("bulk TCP median: redirect %.0f MB/s, routed %.0f MB/s", m[0]/1e6, m[1]/1e6)
	ratio.Report(b, "bulk-redirect-vs-routed", m[0]/m[1], ">= 0.95")
	m = ratio.Medians(11, conns(viaRouter), conns(direct))
	b.Logf("new connections median: redirect %.0f/s, routed %.0f/s", m[0], m[1])
	ratio.Report(b, "conns-redirect-vs-routed", m[0]/m[1], ">= 0.95")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func dial(b *testing.B, n ns.NetNS, addr string) net.Conn {
	var c net.Conn
	if err := n.Do(func(ns.NetNS) (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		b.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

// bulkThroughput reads 256 MiB from addr and returns bytes per second.
func bulkThroughput(b *testing.B, n ns.NetNS, addr string) float64 {
	const size = 256 << 20
	c := dial(b, n, addr)
	defer c.Close()
	start := time.Now()
	if _, err := io.CopyN(io.Discard, c, size); err != nil {
		b.Fatalf("bulk from %s: %v", addr, err)
	}
	return size / time.Since(start).Seconds()
}

// connectionRate opens 500 connections to addr one after another, each reading the
// server's byte, and returns connections per second.
func connectionRate(b *testing.B, n ns.NetNS, addr string) float64 {
	const count = 500
	start := time.Now()
	for range count {
		c := dial(b, n, addr)
		if _, err := c.Read(make([]byte, 1)); err != nil {
			b.Fatalf("connection to %s: %v", addr, err)
		}
		c.Close()
	}
	return count / time.Since(start).Seconds()
}
