package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
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

const httpProxyPkg = "github.com/egress-router/egress-router/proxies/egress-http-proxy"

// Addresses in the destination namespace the HTTP proxy suites use.
var (
	webAddr    = netip.MustParseAddr("203.0.113.80")
	web6Addr   = netip.MustParseAddr("2001:db8:20::80")
	secureAddr = netip.MustParseAddr("203.0.113.43")
)

// httpRouter is the topology with the plugin's net1 in the router pod (mode
// http-proxy), a DNS server inside the pod, web servers in the destination namespace,
// and egress-http-proxy running in the pod.
type httpRouter struct {
	tp     *topology.Topology
	dns    *dnstest.Server
	proxy  *proxyproc.Process
	caFile string // the HTTPS server's certificate, for curl
	secure *httptest.Server

	conf  []byte   // the attachment's configuration, which proxy reads
	flags []string // proxy's flags beyond its addresses
}

// routerConfig is the attachment's configuration with the given rules.
func routerConfig(rules ...string) []byte {
	doc := map[string]any{
		"cniVersion": "1.0.0", "name": "egress-http", "type": "egress-router", "mode": "http-proxy",
		"interfaceArgs": map[string]string{"master": topology.Master},
		"ip": map[string]any{
			"addresses": []string{topology.Reserved.String(), topology.Reserved6.String()},
			"gateways":  []string{topology.Gateway.Addr().String(), topology.Gateway6.Addr().String()},
		},
		"httpProxy": map[string]any{"destinations": rules},
	}
	b, _ := json.Marshal(doc)
	return b
}

// newHTTPRouter builds the whole picture and starts the proxy with rules and flags.
func newHTTPRouter(t testing.TB, rules []string, flags ...string) *httpRouter {
	t.Helper()
	r := &httpRouter{tp: topology.New(t)}
	cni := r.tp.CNI(t, topology.Build(t, topology.RouterPlugin))
	conf := routerConfig(rules...)
	att := cni.Attach(t, r.tp.Pod, conf, "net1")
	if _, err := cni.Add(att); err != nil {
		t.Fatalf("plugin ADD: %v", err)
	}
	t.Cleanup(func() { cni.Del(att) })

	var pc net.PacketConn
	if err := r.tp.Pod.NS.Do(func(ns.NetNS) (err error) {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r.dns = dnstest.Start(t, pc)
	r.serveDestinations(t)

	r.conf, r.flags = conf, flags
	r.proxy = r.startProxy(t, topology.Build(t, httpProxyPkg), 8080, 9090)
	return r
}

// startProxy runs another egress-http-proxy from the binaries in dir, on r's
// configuration and flags, listening on port and serving metrics on metricsPort.
func (r *httpRouter) startProxy(t testing.TB, dir string, port, metricsPort int) *proxyproc.Process {
	t.Helper()
	p := &proxyproc.Process{Metrics: netip.AddrPortFrom(r.tp.Pod.Addr.Addr(), uint16(metricsPort)).String(), MetricsFrom: r.tp.Client}
	p.Start(t, r.tp.Pod.NS, filepath.Join(dir, "egress-http-proxy"), r.conf, append([]string{
		"-dns-server", r.dns.Addr, "-listen", fmt.Sprintf(":%d", port), "-metrics-listen", fmt.Sprintf(":%d", metricsPort)}, r.flags...)...)
	p.WaitReady(t)
	return p
}

// serveDestinations starts, in the destination namespace, a web server on port 80 that
// says which source it saw and which address it was reached on, an HTTPS server on
// port 443, and an echo server on port 7.
func (r *httpRouter) serveDestinations(t testing.TB) {
	t.Helper()
	hello := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		local := req.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
		host, _, _ := net.SplitHostPort(req.RemoteAddr)
		fmt.Fprintf(w, "source %s reached %s host %s", host, local, req.Host)
	})
	web := httptest.NewUnstartedServer(hello)
	web.Listener = topology.Listen(t, r.tp.Dest, "tcp", ":80")
	web.Start()
	t.Cleanup(web.Close)
	r.secure = httptest.NewUnstartedServer(hello)
	r.secure.Listener = topology.Listen(t, r.tp.Dest, "tcp", ":443")
	r.secure.StartTLS()
	t.Cleanup(r.secure.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.secure.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	topology.Serve(t, r.tp.Dest, "tcp", ":7", func(c net.Conn) { io.Copy(c, c) })
}

// proxyURL is the proxy as the client namespace reaches it (the pod's cluster address).
func (r *httpRouter) proxyURL() string {
	return "http://" + netip.AddrPortFrom(r.tp.Pod.Addr.Addr(), 8080).String()
}

// dialFromClient dials from the client namespace.
func (r *httpRouter) dialFromClient(ctx context.Context, network, addr string) (net.Conn, error) {
	return proxyproc.DialIn(r.tp.Client)(ctx, network, addr)
}

// client is Go's http.Client in the client namespace with the proxy set for both
// schemes, trusting the HTTPS server's certificate.
func (r *httpRouter) client() *http.Client {
	u, _ := url.Parse(r.proxyURL())
	tr := r.secure.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(u)
	tr.DialContext = r.dialFromClient
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// curl runs curl in the client namespace with http_proxy and https_proxy set, and
// returns the body and status code.
func (r *httpRouter) curl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	all := append([]string{"http_proxy=" + r.proxyURL(), "https_proxy=" + r.proxyURL(), "curl", "-sS", "--max-time", "10",
		"--cacert", r.caFile, "-w", "\n%{http_code}"}, args...)
	out, _ := r.tp.Exec(t, r.tp.Client, "env", all...).Output()
	i := strings.LastIndexByte(out, '\n')
	var code int
	fmt.Sscan(out[i+1:], &code)
	return out[:max(i, 0)], code
}

// get fetches url with the Go client and returns body and status (0 on error).
func (r *httpRouter) get(url string) (string, int) {
	resp, err := r.client().Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// send writes raw bytes, as no client library would format them, to the proxy from
// the client namespace and returns the status and body of the answer (0 and the error
// when none came).
func (r *httpRouter) send(raw string) (int, string) {
	c, err := r.dialFromClient(context.Background(), "tcp", strings.TrimPrefix(r.proxyURL(), "http://"))
	if err != nil {
		return 0, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tunnel opens a CONNECT tunnel through the proxy from the client namespace, closed
// when the test ends, and returns it with the proxy's status code (0 when none came).
func (r *httpRouter) tunnel(t testing.TB, target string) (net.Conn, int) {
	t.Helper()
	c, code, err := r.connect(strings.TrimPrefix(r.proxyURL(), "http://"), target)
	if c == nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, code
}

// connect opens a CONNECT tunnel to target through the proxy at proxyAddr (ours or
// another) from the client namespace, and returns it with the status code of the
// answer; the connection is nil only when the dial failed, the code 0 when no answer
// came.
func (r *httpRouter) connect(proxyAddr, target string) (net.Conn, int, error) {
	c, err := r.dialFromClient(context.Background(), "tcp", proxyAddr)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	// Read the answer byte by byte so nothing after it is consumed.
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return c, 0, err
		}
		head = append(head, b[0])
	}
	var version string
	var code int
	fmt.Sscanf(string(head), "HTTP/%s %d", &version, &code)
	c.SetDeadline(time.Time{})
	return c, code, nil
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
