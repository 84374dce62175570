package dnsproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/internal/resolver/dnstest"
	"github.com/egress-router/egress-router/test/proxyproc"
	"github.com/egress-router/egress-router/test/topology"
)

// The DNS proxy's end-to-end harness: the real plugin gives the router pod net1 in mode
// dns-proxy, the built egress-dns-proxy binary runs in the pod's namespace with the same
// configuration, the cluster's "DNS server" is an in-process dnstest server on the
// node's cluster address, and the destination servers in the dest namespace accept only
// the reserved addresses.

const (
	dnsProxyPkg    = "github.com/egress-router/egress-router/proxies/egress-dns-proxy"
	clusterDNSPort = 5353
	proxyMetrics   = "127.0.0.1:9101"
)

// dnsRouter is a router pod in mode dns-proxy with its network set up by the plugin.
type dnsRouter struct {
	tp  *topology.Topology
	dns *dnstest.Server
}

func newDNSRouter(t testing.TB, lines ...string) *dnsRouter {
	t.Helper()
	tp := topology.New(t)
	cni := tp.CNI(t, topology.Build(t, topology.RouterPlugin))
	if _, err := cni.Add(cni.Attach(t, tp.Pod, dnsProxyConf(lines...), "net1")); err != nil {
		t.Fatalf("plugin ADD in mode dns-proxy: %v", err)
	}
	var pc net.PacketConn
	if err := tp.Node.Do(func(ns.NetNS) (err error) {
		pc, err = net.ListenPacket("udp", fmt.Sprintf("%s:%d", topology.ClusterGateway.Addr(), clusterDNSPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return &dnsRouter{tp: tp, dns: dnstest.Start(t, pc)}
}

func dnsProxyConf(lines ...string) []byte {
	quoted := make([]string, len(lines))
	for i, l := range lines {
		quoted[i] = fmt.Sprintf("%q", l)
	}
	return fmt.Appendf(nil, `{
  "cniVersion": "1.0.0", "name": "egress-dns", "type": "egress-router", "mode": "dns-proxy",
  "interfaceArgs": {"master": %q},
  "ip": {"addresses": ["%s", "%s"], "gateways": ["%s", "%s"]},
  "dnsProxy": {"destinations": [%s]}
}`, topology.Master, topology.Reserved, topology.Reserved6, topology.Gateway.Addr(), topology.Gateway6.Addr(), strings.Join(quoted, ", "))
}

// start runs egress-dns-proxy in the pod on the configuration of lines, with extra
// flags, and waits until its lines listen.
func (r *dnsRouter) start(t testing.TB, lines []string, flags ...string) *proxyproc.Process {
	t.Helper()
	return r.startFrom(t, topology.Build(t, dnsProxyPkg), proxyMetrics, lines, flags...)
}

// startFrom is start with the binary in dir, serving metrics on metrics (host:port in
// the pod): a second proxy beside the first.
func (r *dnsRouter) startFrom(t testing.TB, dir, metrics string, lines []string, flags ...string) *proxyproc.Process {
	t.Helper()
	p := &proxyproc.Process{Metrics: metrics, MetricsFrom: r.tp.Pod.NS}
	return p.Start(t, r.tp.Pod.NS, filepath.Join(dir, "egress-dns-proxy"), dnsProxyConf(lines...), append([]string{
		"-dns-server", fmt.Sprintf("%s:%d", topology.ClusterGateway.Addr(), clusterDNSPort),
		"-dns-timeout", "200ms",
		"-metrics-listen", metrics,
		"-ttl-floor", "200ms",
		"-reload-interval", "100ms",
	}, flags...)...)
}

// serveEcho serves TCP on each of addrs ("ip:port") in namespace n: it greets each
// connection with "<address dialled> <client address>", echoes what it reads, and after
// the client's FIN sends "bye" and its own FIN. Addresses not listed get refused.
func serveEcho(t testing.TB, n ns.NetNS, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		topology.Serve(t, n, "tcp", addr, func(c net.Conn) {
			fmt.Fprintf(c, "%s %s\n", c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(), c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
			io.Copy(c, c)
			io.WriteString(c, "bye\n")
			c.(*net.TCPConn).CloseWrite()
		})
	}
}

// conn is a client connection from the client namespace to the router pod.
type conn struct {
	*net.TCPConn
	r *bufio.Reader
}

// dialPod connects from the client namespace to the router pod's port (its IPv4 cluster
// address, or IPv6 when v6).
func (r *dnsRouter) dialPod(port int, v6 bool) (*conn, error) {
	addr := r.tp.Pod.Addr.Addr()
	if v6 {
		addr = r.tp.Pod.Addr6.Addr()
	}
	var c net.Conn
	err := r.tp.Client.Do(func(ns.NetNS) (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(addr.String(), fmt.Sprint(port)), 2*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{c.(*net.TCPConn), bufio.NewReader(c)}, nil
}

// greeting connects and returns the destination server's greeting: the address the
// proxy dialled and the source the server saw.
func (r *dnsRouter) greeting(t testing.TB, port int, v6 bool) (dialled, source string) {
	t.Helper()
	c, err := r.dialPod(port, v6)
	if err != nil {
		t.Fatalf("connect to the router's port %d: %v", port, err)
	}
	defer c.Close()
	dialled, source, err = c.greeting()
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	return dialled, source
}

func (c *conn) greeting() (dialled, source string, err error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", "", fmt.Errorf("no greeting: %w", err)
	}
	dialled, source, _ = strings.Cut(strings.TrimSpace(line), " ")
	return dialled, source, nil
}

// closedAtOnce reports whether the proxy closed c without relaying anything.
func (c *conn) closedAtOnce() bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !os.IsTimeout(err)
}
