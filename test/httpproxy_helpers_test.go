package test

import (
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/pkg/resolver/dnstest"
	"github.com/egress-router/egress-router/test/topology"
)

// Addresses in the destination namespace the HTTP proxy suites use.
var (
	webAddr    = netip.MustParseAddr("203.0.113.80")
	web6Addr   = netip.MustParseAddr("2001:db8:20::80")
	secureAddr = netip.MustParseAddr("203.0.113.43")
)

// proxyBinary builds egress-http-proxy once per test run.
var proxyBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "egress-http-proxy-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "egress-http-proxy")
	cmd := exec.Command("go", "build", "-tags", "netgo", "-o", bin, "../proxies/egress-http-proxy")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func buildProxy(t testing.TB) string {
	t.Helper()
	bin, err := proxyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// httpRouter is the topology with the plugin's net1 in the router pod (mode
// http-proxy), a DNS server inside the pod, web servers in the destination namespace,
// and egress-http-proxy running in the pod.
type httpRouter struct {
	tp         *topology.Topology
	dns        *dnstest.Server
	configFile string
	proxy      *exec.Cmd
	logs       *lockedBuffer
	exited     chan error
	caFile     string // the HTTPS server's certificate, for curl
	secure     *httptest.Server
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
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
	bin := buildProxy(t)
	r := &httpRouter{tp: topology.New(t), logs: &lockedBuffer{}}
	cni := r.tp.CNI(t, topology.BuildPlugin(t, topology.RouterPlugin))
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

	r.configFile = filepath.Join(t.TempDir(), "config.json")
	r.writeConfig(t, conf)
	args := append([]string{"--net=" + r.tp.Pod.NS.Path(), "--", bin, "-config", r.configFile,
		"-dns-server", r.dns.Addr, "-listen", ":8080", "-metrics-listen", ":9090"}, flags...)
	r.proxy = exec.Command("nsenter", args...)
	r.proxy.Stdout, r.proxy.Stderr = r.logs, r.logs
	if err := r.proxy.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan error, 1)
	go func() { r.exited <- r.proxy.Wait() }()
	t.Cleanup(func() {
		r.proxy.Process.Kill() // by PID; a no-op once it has exited
		<-r.exited
		if t.Failed() {
			t.Logf("proxy log:\n%s", r.logs.String())
		}
	})
	r.waitReady(t)
	return r
}

// writeConfig replaces the configuration file atomically, as a ConfigMap update does.
func (r *httpRouter) writeConfig(t testing.TB, content []byte) {
	t.Helper()
	tmp := r.configFile + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.configFile); err != nil {
		t.Fatal(err)
	}
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
	web.Listener = r.listenInDest(t, ":80")
	web.Start()
	t.Cleanup(web.Close)
	r.secure = httptest.NewUnstartedServer(hello)
	r.secure.Listener = r.listenInDest(t, ":443")
	r.secure.StartTLS()
	t.Cleanup(r.secure.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.secure.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	echo := r.listenInDest(t, ":7")
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

func (r *httpRouter) listenInDest(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := r.tp.Dest.Do(func(ns.NetNS) (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ln
}

// proxyURL is the proxy as the client namespace reaches it (the pod's cluster address).
func (r *httpRouter) proxyURL() string {
	return "http://" + netip.AddrPortFrom(r.tp.Pod.Addr.Addr(), 8080).String()
}

// dialFromClient dials from the client namespace.
func (r *httpRouter) dialFromClient(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = r.tp.Client.Do(func(ns.NetNS) error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
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

// waitReady polls /readyz from the client namespace.
func (r *httpRouter) waitReady(t testing.TB) {
	t.Helper()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: r.dialFromClient}}
	u := "http://" + netip.AddrPortFrom(r.tp.Pod.Addr.Addr(), 9090).String() + "/readyz"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-r.exited:
			t.Fatalf("proxy exited: %v\n%s", err, r.logs.String())
		default:
		}
	}
	t.Fatalf("proxy not ready:\n%s", r.logs.String())
}

// metrics returns the proxy's /metrics text.
func (r *httpRouter) metrics(t *testing.T) string {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: r.dialFromClient}}
	resp, err := c.Get("http://" + netip.AddrPortFrom(r.tp.Pod.Addr.Addr(), 9090).String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// tunnel opens a CONNECT tunnel from the client namespace.
func (r *httpRouter) tunnel(t testing.TB, target string) (net.Conn, int) {
	t.Helper()
	c, err := r.dialFromClient(context.Background(), "tcp", strings.TrimPrefix(r.proxyURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	// Read the answer byte by byte so nothing after it is consumed.
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return c, 0
		}
		head = append(head, b[0])
	}
	var code int
	fmt.Sscanf(string(head), "HTTP/1.1 %d", &code)
	c.SetDeadline(time.Time{})
	return c, code
}

// echoes reports whether a tunnel to the echo server still carries data.
func echoes(c net.Conn, msg string) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}

func (r *httpRouter) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := r.proxy.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
