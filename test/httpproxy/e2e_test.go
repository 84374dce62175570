package httpproxy

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/topology"
	"github.com/egress-router/egress-router/test/wait"
)

// curl and Go's client, through the proxy in the router pod, reach HTTP and HTTPS
// servers that accept only the reserved address; a denied name gets 403; going direct
// is refused.
func TestHTTPProxyCarriesClientsFromTheReservedAddress(t *testing.T) {
	r := newHTTPRouter(t, []string{"!*.internal.example.com", "*.example.com", "2001:db8:20::/64"})
	r.dns.Set("www.example.com", 60, webAddr)
	r.dns.Set("example.com", 60, secureAddr) // the test certificate's name
	r.dns.Set("v6.example.com", 60, web6Addr)
	r.dns.Set("db.internal.example.com", 60, webAddr)
	r.dns.Set("www.example.org", 60, webAddr)
	reserved, reserved6 := topology.Reserved.Addr().String(), topology.Reserved6.Addr().String()
	for _, tc := range []struct {
		name, url  string
		wantStatus int
		wantBody   string
	}{
		{"HTTP by name", "http://www.example.com/", 200, "source " + reserved + " reached 203.0.113.80:80 host www.example.com"},
		{"HTTPS through CONNECT", "https://example.com/", 200, "source " + reserved + " reached 203.0.113.43:443"},
		{"IPv6 by name", "http://v6.example.com/", 200, "source " + reserved6 + " reached [2001:db8:20::80]:80"},
		{"IPv6 literal by range rule", "http://[2001:db8:20::80]/", 200, "source " + reserved6},
		{"denied before the wildcard", "http://db.internal.example.com/", 403, ""},
		{"no rule matches", "http://www.example.org/", 403, ""},
		{"IPv4 literal no rule names", "http://203.0.113.80/", 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, status := r.curl(t, tc.url)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Errorf("curl %s: %d %q, want %d %q", tc.url, status, body, tc.wantStatus, tc.wantBody)
			}
			body, status = r.get(tc.url)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Errorf("Go client %s: %d %q, want %d %q", tc.url, status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	// Without the proxy the destination refuses the client.
	if out, err := r.tp.Exec(t, r.tp.Client, "curl", "-sS", "--max-time", "5", "http://203.0.113.80/").Output(); err == nil || strings.Contains(out, "source") {
		t.Errorf("direct curl: %q; want it refused", out)
	}
	_, m := r.proxy.Get("/metrics")
	for _, want := range []string{`egress_http_proxy_requests_total{decision="allow",rule="2"}`, `egress_http_proxy_tunnels_total{decision="allow",rule="2"} 2`, `egress_http_proxy_requests_total{decision="deny",rule="1"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Names that resolve to loopback, link-local or metadata addresses are refused on the
// strength of a name rule; a name moved to a guarded address after it was allowed is
// refused on the next resolution (rebinding).
func TestHTTPProxyGuardsWhatNamesResolveTo(t *testing.T) {
	r := newHTTPRouter(t, []string{"*.example.com"})
	for name, addr := range map[string]string{
		"loopback.example.com": "127.0.0.1", "metadata.example.com": "169.254.169.254",
		"linklocal.example.com": "fe80::1", "ec2.example.com": "fd00:ec2::254", "alibaba.example.com": "100.100.100.200",
	} {
		r.dns.Set(name, 60, mustAddr(addr))
		if body, status := r.curl(t, "http://"+name+":9090/metrics"); status != 403 {
			t.Errorf("%s (%s): %d %q, want 403", name, addr, status, body)
		}
	}
	r.dns.Set("rebind.example.com", 0, webAddr)
	if body, status := r.curl(t, "http://rebind.example.com/"); status != 200 {
		t.Fatalf("before rebinding: %d %q", status, body)
	}
	r.dns.Set("rebind.example.com", 0, mustAddr("127.0.0.1"))
	if body, status := r.curl(t, "http://rebind.example.com:9090/metrics"); status != 403 {
		t.Fatalf("after rebinding to loopback: %d %q", status, body)
	}
	if body, status := r.curl(t, "https://loopback.example.com:443/"); status == 200 {
		t.Fatalf("CONNECT to a loopback name: %d %q", status, body)
	}
	// A name behind more CNAMEs than a resolver follows does not resolve, and the
	// decision line says why.
	r.dns.SetChain("chain.example.com", 17, webAddr)
	if body, status := r.curl(t, "http://chain.example.com/"); status != 502 {
		t.Fatalf("a name behind 17 CNAMEs: %d %q, want 502", status, body)
	}
	if logs := r.proxy.Logs.String(); !strings.Contains(logs, "resolve chain.example.com: CNAME chain longer than 16 links") {
		t.Fatalf("no log line says why chain.example.com did not resolve:\n%s", logs)
	}
}

// A deny name rule holds against a name spelt with a Unicode full stop (U+FF61,
// U+FF0E, U+3002), which IDNA reads as '.': an absolute-form GET and a CONNECT both
// get 403 and the destination hears nothing. Before, such a name kept a trailing dot,
// matched no deny rule, and "*" let it through.
func TestHTTPProxyDenyNameRulesHoldForUnicodeFullStops(t *testing.T) {
	r := newHTTPRouter(t, []string{"!*.internal.example.com", "!secret.example.com", "*"})
	r.dns.Set("db.internal.example.com", 60, webAddr)
	r.dns.Set("secret.example.com", 60, secureAddr)
	for _, host := range []string{"db.internal.example.com\uff61", "db.internal.example.com\u3002", "secret.example.com\uff0e", "secret.example.com\u3002"} {
		if status, body := r.send("GET http://" + host + "/ HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"); status != 403 {
			t.Errorf("GET http://%s/: %d %q, want 403", host, status, body)
		}
		if _, status := r.tunnel(t, host+":443"); status != 403 {
			t.Errorf("CONNECT %s:443: %d, want 403", host, status)
		}
	}
	// The rules themselves still let through what they do not deny.
	if status, body := r.send("GET http://203.0.113.80/ HTTP/1.1\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Fatalf("GET http://203.0.113.80/: %d %q, want 200", status, body)
	}
}

// The proxy refuses every address of its own pod, on every port, unless an address
// rule names that exact address: "*" allowing the reserved address, a range covering
// the pod's cluster address, or a name resolving to the pod does not reach the pod's
// metrics port. Before, only the proxy's own port (8080) was refused there.
func TestHTTPProxyRefusesItsOwnPodUnlessAnAddressRuleNamesIt(t *testing.T) {
	rules := []string{"10.128.0.0/16", "*"}
	r := newHTTPRouter(t, rules, "-reload-interval", "100ms", "-connect-ports", "443,9090")
	reserved := topology.Reserved.Addr().String()
	r.dns.Set("pod.example.com", 60, topology.Reserved.Addr())
	r.dns.Set("www.example.com", 60, webAddr)
	for _, target := range []string{
		reserved + ":9090", "[" + topology.Reserved6.Addr().String() + "]:9090",
		r.tp.Pod.Addr.Addr().String() + ":9090", "pod.example.com:9090",
	} {
		if body, status := r.get("http://" + target + "/metrics"); status != 403 {
			t.Errorf("GET http://%s/Metrics: %d %.80q, want 403", target, status, body)
		}
		if _, status := r.tunnel(t, target); status != 403 {
			t.Errorf("CONNECT %s: %d, want 403", target, status)
		}
	}
	if body, status := r.get("http://www.example.com/"); status != 200 {
		t.Fatalf("GET http://www.example.com/: %d %q; the rules allow it", status, body)
	}
	if !strings.Contains(r.proxy.Logs.String(), "destination "+reserved+" is an address of this pod") {
		t.Errorf("no decision line says why the pod was refused")
	}
	// An address rule naming the reserved address means it.
	r.proxy.WriteConfig(t, routerConfig(append([]string{reserved}, rules...)...))
	wait.For(t, 10*time.Second, "the rule naming the pod's address", func() bool {
		body, status := r.get("http://" + reserved + ":9090/metrics")
		return status == 200 && strings.Contains(body, "egress_http_proxy_requests_total")
	})
	// Not the proxy's own port there: its listener (":8080", dual-stack) takes
	// connections on every address of the pod, so that request would loop.
	if body, status := r.get("http://" + reserved + ":8080/"); status != 403 {
		t.Fatalf("GET http://%s:8080/, the proxy itself: %d %q, want 403", reserved, status, body)
	}
}

// A changed configuration file applies to new requests and tunnels while an open
// tunnel carries on; an invalid file is refused and the rules in force stay.
func TestHTTPProxyReloadsOnFileChange(t *testing.T) {
	r := newHTTPRouter(t, []string{"*.example.com"}, "-reload-interval", "100ms", "-connect-ports", "443,7")
	r.dns.Set("www.example.com", 60, webAddr)
	r.dns.Set("www.example.org", 60, webAddr)
	tunnel, status := r.tunnel(t, "www.example.com:7")
	if status != 200 || !topology.Echoes(tunnel, "before") {
		t.Fatalf("tunnel: %d", status)
	}
	r.proxy.WriteConfig(t, routerConfig("*.example.org"))
	wait.For(t, 10*time.Second, "the new rules", func() bool { _, s := r.curl(t, "http://www.example.com/"); return s == 403 })
	if _, s := r.curl(t, "http://www.example.org/"); s != 200 {
		t.Fatalf("newly allowed name: %d", s)
	}
	if _, s := r.tunnel(t, "www.example.com:7"); s != 403 {
		t.Fatalf("new tunnel under the new rules: %d", s)
	}
	if !topology.Echoes(tunnel, "after reload") {
		t.Fatal("the open tunnel did not survive the reload")
	}
	r.proxy.WriteConfig(t, []byte(`{"mode": "http-proxy", "ip": {"addresses": ["192.0.2.99/24"]}, "httpProxy": {"destinations": ["*.example.net", "!*"]}}`))
	wait.For(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(r.proxy.Logs.String(), "reload refused") })
	if _, s := r.curl(t, "http://www.example.org/"); s != 200 {
		t.Fatalf("after an invalid reload: %d; the old rules should stay", s)
	}
}

// SIGHUP reloads at once, without waiting for the file poll.
func TestHTTPProxyReloadsOnSIGHUP(t *testing.T) {
	r := newHTTPRouter(t, []string{"*.example.com"}, "-reload-interval", "1h")
	r.dns.Set("www.example.com", 60, webAddr)
	r.proxy.WriteConfig(t, routerConfig("!www.example.com", "*.example.com"))
	if _, s := r.curl(t, "http://www.example.com/"); s != 200 {
		t.Fatalf("before SIGHUP: %d", s)
	}
	r.proxy.Signal(t, syscall.SIGHUP)
	wait.For(t, 10*time.Second, "the new rules", func() bool { _, s := r.curl(t, "http://www.example.com/"); return s == 403 })
}

// SIGTERM stops accepting, lets an open tunnel run for the grace period, then exits 0.
func TestHTTPProxyDrainsOnSIGTERM(t *testing.T) {
	r := newHTTPRouter(t, []string{"*.example.com"}, "-drain-grace", "1500ms", "-connect-ports", "7")
	r.dns.Set("echo.example.com", 60, webAddr)
	tunnel, status := r.tunnel(t, "echo.example.com:7")
	if status != 200 {
		t.Fatalf("tunnel: %d", status)
	}
	start := time.Now()
	r.proxy.Signal(t, syscall.SIGTERM)
	wait.For(t, 10*time.Second, "draining", func() bool { return strings.Contains(r.proxy.Logs.String(), "draining") })
	if !topology.Echoes(tunnel, "during the grace period") {
		t.Fatal("tunnel cut before the grace period ended")
	}
	if _, s := r.curl(t, "http://echo.example.com/"); s != 0 {
		t.Fatalf("a new request while draining got %d; want the connection refused", s)
	}
	if err := r.proxy.WaitExit(t, 10*time.Second, "the grace period"); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 1400*time.Millisecond {
		t.Fatalf("exited after %v, before the grace period", elapsed)
	}
}
