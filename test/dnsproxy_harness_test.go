package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/egress-router/egress-router/pkg/resolver/dnstest"
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
	cni := tp.CNI(t, topology.BuildPlugin(t, topology.RouterPlugin))
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

// proxyProcess is the egress-dns-proxy binary running in the router pod.
type proxyProcess struct {
	cmd        *exec.Cmd
	configFile string
	logs       *syncBuffer
	exited     chan error
	pod        ns.NetNS
}

// start runs the proxy in the pod on the configuration of lines, with extra flags. It
// is stopped (by its PID) when the test ends.
func (r *dnsRouter) start(t testing.TB, lines []string, flags ...string) *proxyProcess {
	t.Helper()
	p := &proxyProcess{configFile: filepath.Join(t.TempDir(), "config.json"), logs: &syncBuffer{}, exited: make(chan error, 1), pod: r.tp.Pod.NS}
	p.writeConfig(t, dnsProxyConf(lines...))
	args := append([]string{"--net=" + r.tp.Pod.NS.Path(), "--", filepath.Join(topology.BuildPlugin(t, dnsProxyPkg), "egress-dns-proxy"),
		"-config", p.configFile,
		"-dns-server", fmt.Sprintf("%s:%d", topology.ClusterGateway.Addr(), clusterDNSPort),
		"-dns-timeout", "200ms",
		"-metrics-listen", proxyMetrics,
		"-ttl-floor", "200ms",
		"-reload-interval", "100ms",
	}, flags...)
	p.cmd = exec.Command("nsenter", args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("egress-dns-proxy logs:\n%s", p.logs.String())
		}
	})
	p.waitServing(t)
	return p
}

func (p *proxyProcess) writeConfig(t testing.TB, conf []byte) {
	t.Helper()
	// Write then rename, as a ConfigMap update swaps the file whole.
	tmp := p.configFile + ".new"
	if err := os.WriteFile(tmp, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.configFile); err != nil {
		t.Fatal(err)
	}
}

func (p *proxyProcess) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits for /readyz: every line has an address, so connections are relayed.
func (p *proxyProcess) waitReady(t testing.TB) {
	t.Helper()
	eventually(t, "egress-dns-proxy to be ready", func() bool { code, _ := p.get("/readyz"); return code == http.StatusOK })
}

// waitServing waits for /healthz: the lines listen once it answers.
func (p *proxyProcess) waitServing(t testing.TB) {
	t.Helper()
	eventually(t, "egress-dns-proxy to serve", func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("egress-dns-proxy exited at start (%v):\n%s", err, p.logs.String())
		default:
		}
		code, _ := p.get("/healthz")
		return code == http.StatusOK
	})
}

// get fetches a path of the metrics server, from inside the pod's namespace.
func (p *proxyProcess) get(path string) (int, string) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = p.pod.Do(func(ns.NetNS) error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	resp, err := client.Get("http://" + proxyMetrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of a sample line of /metrics, such as
// `egress_dns_proxy_dial_errors_total{port="80"}`; -1 when absent.
func (p *proxyProcess) metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, body := p.get("/metrics")
	for l := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// serveEcho serves TCP on each of addrs ("ip:port") in namespace n: it greets each
// connection with "<address dialled> <client address>", echoes what it reads, and after
// the client's FIN sends "bye" and its own FIN. Addresses not listed get refused.
func serveEcho(t testing.TB, n ns.NetNS, addrs ...string) {
	t.Helper()
	// The destination's ranges are local routes, not assigned addresses: binding one
	// of their IPv6 addresses needs IPV6_FREEBIND.
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			if network == "tcp6" {
				err = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			}
		})
		return err
	}}
	for _, addr := range addrs {
		var ln net.Listener
		if err := n.Do(func(ns.NetNS) (err error) {
			ln, err = lc.Listen(context.Background(), "tcp", addr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					fmt.Fprintf(c, "%s %s\n", c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(), c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
					io.Copy(c, c)
					io.WriteString(c, "bye\n")
					c.(*net.TCPConn).CloseWrite()
				}()
			}
		}()
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

// eventually polls cond for up to 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
