package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/policy"
	"github.com/egress-router/egress-router/test/capture"
	"github.com/egress-router/egress-router/test/serve"
)

// The package tests run on loopback, where every address is held by the destination
// guard and, being an address of the test's own network namespace, by the refusal of
// the proxy's own pod. Rule lists lift both the way a configuration would: an allow
// rule naming the origins' address 127.0.0.2 exactly, placed after a deny rule for it
// (so it never decides on its own), lets name rules be tested against loopback servers.
const liftLoopback = "!127.0.0.2\n127.0.0.2"

// fakeDNS is a resolver with fixed answers, counting lookups.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr // successive answers; the last repeats
	lookups map[string]int
}

func newDNS(records map[string]string) *fakeDNS {
	d := &fakeDNS{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
	for name, addrs := range records {
		for _, answer := range strings.Split(addrs, "|") {
			var list []netip.Addr
			for _, a := range strings.Fields(answer) {
				list = append(list, netip.MustParseAddr(a))
			}
			d.answers[name] = append(d.answers[name], list)
		}
	}
	return d
}

func (d *fakeDNS) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	answers, ok := d.answers[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	n := d.lookups[host]
	d.lookups[host]++
	return answers[min(n, len(answers)-1)], nil
}

func (d *fakeDNS) count(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[host]
}

// proxy is a Server under test on a loopback port.
type proxy struct {
	*Server
	addr     string
	reg      *prometheus.Registry
	logs     *capture.Buffer
	limiter  *connlimit.Limiter
	listener *connlimit.Listener
}

func mustPolicy(t testing.TB, rules string) policy.Policy {
	t.Helper()
	p, err := policy.Parse(strings.Split(rules, "\n"))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return p
}

// startProxy serves a proxy with rules (newline-separated) and the resolver of dns;
// configure adjusts the server before it starts.
func startProxy(t testing.TB, rules string, dns *fakeDNS, configure ...func(*Server)) *proxy {
	t.Helper()
	if dns == nil {
		dns = newDNS(nil)
	}
	p := &proxy{reg: prometheus.NewRegistry(), logs: &capture.Buffer{}, limiter: &connlimit.Limiter{}}
	p.Server = &Server{
		Resolve:               dns.resolve,
		DialTimeout:           2 * time.Second,
		HeaderTimeout:         2 * time.Second,
		IdleTimeout:           5 * time.Second,
		UpstreamTimeout:       5 * time.Second,
		MaxHeaderBytes:        16 << 10,
		Metrics:               NewMetrics(p.reg),
		Log:                   slog.New(slog.NewJSONHandler(p.logs, nil)),
		DecisionLogsPerSecond: 1000,
	}
	for _, c := range configure {
		c(p.Server)
	}
	p.SetRules(Rules{Policy: mustPolicy(t, rules)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.listener = &connlimit.Listener{TCPListener: ln.(*net.TCPListener), Limiter: p.limiter}
	p.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { p.Serve(p.listener); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-done
	})
	return p
}

// client is an http.Client using the proxy for every scheme.
func (p *proxy) client() *http.Client {
	u, _ := url.Parse("http://" + p.addr)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
}

// exchange sends raw bytes on a new connection and returns everything the proxy
// answers until it closes (or 3 seconds pass).
func (p *proxy) exchange(t testing.TB, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// origin is a test destination recording what it receives.
type origin struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	peers    []string // remote address of each request's connection
}

// startOrigin serves on addr ("127.0.0.1:0", "[::1]:0", ...) with handler, or a handler
// that answers "hello from <addr>".
func startOrigin(t testing.TB, addr string, handler http.HandlerFunc) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s", ln.Addr()) }
	}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r)
		o.peers = append(o.peers, r.RemoteAddr)
		o.mu.Unlock()
		handler(w, r)
	}))
	o.Listener = ln
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *origin) received() []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.requests...)
}

func (o *origin) port() string {
	_, port, _ := net.SplitHostPort(o.Listener.Addr().String())
	return port
}

// get fetches url through the proxy and returns the status and body.
func (p *proxy) get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := p.client().Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// statusOf reads the status code of the first response in raw.
func statusOf(raw string) int {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	m.Write(&out)
	return out.GetCounter().GetValue() + out.GetGauge().GetValue()
}

// rawOrigin is a destination on 127.0.0.2 that writes its answers byte for byte: answer
// is called for each request read on a connection and says whether to read another.
// It returns the origin's address.
func rawOrigin(t testing.TB, answer func(c net.Conn, r *http.Request) bool) string {
	t.Helper()
	return serve.Local(t, "127.0.0.2:0", func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			if !answer(c, r) {
				return
			}
		}
	}).String()
}
