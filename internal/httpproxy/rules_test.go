package httpproxy

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// Every rule kind and order case, decided on real requests through the proxy. The
// origins listen on 127.0.0.2 and ::1; the names resolve to them.
func TestRulesDecideRequests(t *testing.T) {
	v4 := startOrigin(t, "127.0.0.2:0", nil)
	v6 := startOrigin(t, "[::1]:0", nil)
	dns := newDNS(map[string]string{
		"www.example.com":             "127.0.0.2",
		"api.example.com":             "127.0.0.2",
		"example.com":                 "127.0.0.2",
		"secret.internal.example.com": "127.0.0.2",
		"other.example.org":           "127.0.0.2",
		"v6.example.com":              "::1",
		"xn--bcher-kva.example":       "127.0.0.2",
	})
	url4 := func(host string) string { return "http://" + host + ":" + v4.port() + "/" }
	url6 := func(host string) string { return "http://" + host + ":" + v6.port() + "/" }
	for _, tc := range []struct {
		name, rules, url string
		want             int
	}{
		{"address rule allows its address", "127.0.0.2", url4("127.0.0.2"), 200},
		{"range rule allows an address in it", "127.0.0.0/30\n127.0.0.2", url4("127.0.0.2"), 200}, // the second rule lifts only the pod refusal
		{"address rule does not allow a neighbour", "127.0.0.3", url4("127.0.0.2"), 403},
		{"IPv6 address rule", "::1", url6("[::1]"), 200},
		{"IPv6 range rule", "::/127\n::1", url6("[::1]"), 200},
		{"IPv6 name rule", "v6.example.com\n!::1\n::1", url6("v6.example.com"), 200},
		{"name rule allows that name", "www.example.com\n" + liftLoopback, url4("www.example.com"), 200},
		{"name rule is exact", "www.example.com\n" + liftLoopback, url4("api.example.com"), 403},
		{"name rule matches the requested name only, not the address it resolves to", "www.example.com\n" + liftLoopback, url4("127.0.0.2"), 403},
		{"wildcard allows names under the domain", "*.example.com\n" + liftLoopback, url4("api.example.com"), 200},
		{"wildcard allows the domain itself", "*.example.com\n" + liftLoopback, url4("example.com"), 200},
		{"wildcard does not allow another domain", "*.example.com\n" + liftLoopback, url4("other.example.org"), 403},
		{"names compare lowercase without trailing dot", "www.example.com\n" + liftLoopback, url4("WWW.Example.COM."), 200},
		{"IDN rules compare in punycode", "bücher.example\n" + liftLoopback, url4("xn--bcher-kva.example"), 200},
		{"deny before allow denies", "!*.internal.example.com\n*.example.com\n" + liftLoopback, url4("secret.internal.example.com"), 403},
		{"allow before deny allows", "*.example.com\n!*.internal.example.com\n" + liftLoopback, url4("secret.internal.example.com"), 200},
		{"deny address before wildcard", "!127.0.0.2\n*.example.com\n" + liftLoopback, url4("www.example.com"), 403},
		{"star allows what is not denied", "!*.internal.example.com\n127.0.0.2\n*", url4("other.example.org"), 200},
		{"star keeps the denials above it", "!*.internal.example.com\n127.0.0.2\n*", url4("secret.internal.example.com"), 403},
		{"no match is denied", "203.0.113.9\n*.example.org", url4("127.0.0.2"), 403},
		{"a name that does not resolve is unreachable", "*.example.net", url4("nowhere.example.net"), 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, tc.rules, dns)
			status, body := p.get(t, tc.url)
			if status != tc.want {
				t.Fatalf("GET %s with rules %q: status %d (%q), want %d", tc.url, tc.rules, status, body, tc.want)
			}
			if tc.want == 200 && !strings.HasPrefix(body, "hello from") {
				t.Fatalf("body %q does not come from the origin", body)
			}
		})
	}
}

// The destination guard holds names that resolve to loopback, link-local, metadata or
// unspecified addresses: a name or "*" rule never lifts it, only an address rule naming
// the address does.
func TestGuardRefusesNamesResolvingToGuardedAddresses(t *testing.T) {
	loop := startOrigin(t, "127.0.0.2:0", nil)
	dns := newDNS(map[string]string{
		"loopback.example.com":  "127.0.0.2",
		"metadata.example.com":  "169.254.169.254",
		"linklocal.example.com": "169.254.10.1",
		"v6ll.example.com":      "fe80::1",
		"ec2.example.com":       "fd00:ec2::254",
		"alibaba.example.com":   "100.100.100.200",
		"zero.example.com":      "0.0.0.0",
		"mapped.example.com":    "::ffff:127.0.0.2",
		"compat.example.com":    "::7f00:2",
		"siit.example.com":      "::ffff:0:7f00:2",
		"teredo.example.com":    "2001:0:cb00:7105::80ff:fffd", // client 127.0.0.2
		"mixed.example.com":     "169.254.169.254 127.0.0.2",
	})
	for _, tc := range []struct {
		rules, host string
		want        int
	}{
		{"*.example.com", "loopback.example.com", 403},
		{"*", "loopback.example.com", 403},
		{"*.example.com", "metadata.example.com", 403},
		{"*.example.com", "linklocal.example.com", 403},
		{"*.example.com", "v6ll.example.com", 403},
		{"*.example.com", "ec2.example.com", 403},
		{"*.example.com", "alibaba.example.com", 403},
		{"*.example.com", "zero.example.com", 403},
		{"*.example.com", "mapped.example.com", 403},
		{"*.example.com", "compat.example.com", 403},
		{"*.example.com", "siit.example.com", 403},
		{"*.example.com", "teredo.example.com", 403},
		{"0.0.0.0/0\n::/0", "loopback.example.com", 403}, // a catch-all range does not name it
		{"*.example.com\n127.0.0.2", "loopback.example.com", 200},
		{"*.example.com\n127.0.0.2", "mixed.example.com", 200}, // only the allowed address is dialled
		{"*", "127.0.0.2", 403},
	} {
		t.Run(tc.host+" with "+strings.ReplaceAll(tc.rules, "\n", ","), func(t *testing.T) {
			p := startProxy(t, tc.rules, dns)
			if status, body := p.get(t, "http://"+tc.host+":"+loop.port()+"/"); status != tc.want {
				t.Fatalf("status %d (%q), want %d", status, body, tc.want)
			}
		})
	}
}

// Every address of the proxy's own pod (here, of the test's network namespace: its
// loopback addresses) is refused on every port, as the DNS proxy refuses it, unless an
// allow address rule names that exact address: a range or a name that covers it lifts
// the guard but does not reach the pod's other listeners (its metrics port, a
// sidecar). Before, only the proxy's own listening port was refused.
func TestAddressesOfThePodAreRefusedUnlessNamedExactly(t *testing.T) {
	metrics := startOrigin(t, "127.0.0.2:0", nil) // another listener of the pod
	v6 := startOrigin(t, "[::1]:0", nil)
	echo, _ := echoServer(t, "127.0.0.2:0")
	dns := newDNS(map[string]string{"pod.example.com": "127.0.0.2"})
	url4 := func(host string) string { return "http://" + host + ":" + metrics.port() + "/" }
	for _, tc := range []struct {
		name, rules, url string
		want             int
	}{
		{"an address in an allowed range", "127.0.0.0/8", url4("127.0.0.2"), 403},
		{"a name resolving to the pod", "*.example.com\n!127.0.0.0/8\n127.0.0.0/8", url4("pod.example.com"), 403},
		{"an address a rule names exactly", "127.0.0.2", url4("127.0.0.2"), 200},
		{"an IPv6 address a rule names exactly", "::1", "http://[::1]:" + v6.port() + "/", 200},
		{"a name resolving to an address a rule names exactly", "*.example.com\n!127.0.0.2\n127.0.0.2", url4("pod.example.com"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, tc.rules, dns)
			if status, body := p.get(t, tc.url); status != tc.want {
				t.Fatalf("GET %s with rules %q: %d %q, want %d", tc.url, tc.rules, status, body, tc.want)
			}
		})
	}
	t.Run("a tunnel to an address in an allowed range", func(t *testing.T) {
		p := startProxy(t, "127.0.0.0/8", nil, func(s *Server) { s.ConnectPorts = []uint16{echo} })
		if _, _, status := connect(t, p, "127.0.0.2:"+strconv.Itoa(int(echo)), ""); status != 403 {
			t.Fatalf("CONNECT: %d, want 403", status)
		}
		if !strings.Contains(p.logs.String(), "destination 127.0.0.2 is an address of this pod") {
			t.Fatalf("the decision log does not say why:\n%s", p.logs)
		}
	})
}

// A name is resolved once; the address dialled is one of those checked, whatever a
// second lookup would say (DNS rebinding between check and dial).
func TestDialGoesToTheCheckedAddress(t *testing.T) {
	good := startOrigin(t, "127.0.0.2:0", nil)
	port := good.port()
	bad, err := net.Listen("tcp", "127.0.0.3:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	reached := make(chan struct{}, 1)
	go func() {
		if c, err := bad.Accept(); err == nil {
			reached <- struct{}{}
			c.Close()
		}
	}()
	dns := newDNS(map[string]string{"rebind.example.com": "127.0.0.2|127.0.0.3"})
	p := startProxy(t, "!127.0.0.3\nrebind.example.com\n127.0.0.2", dns)
	client := p.client()
	for range 3 {
		resp, err := client.Get("http://rebind.example.com:" + port + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "127.0.0.2") {
			t.Fatalf("status %d body %q, want the checked address 127.0.0.2", resp.StatusCode, body)
		}
	}
	if n := dns.count("rebind.example.com"); n != 1 {
		t.Fatalf("%d lookups for one keep-alive target; want 1", n)
	}
	select {
	case <-reached:
		t.Fatal("the proxy dialled the rebound address")
	default:
	}
}

// The deciding rule is counted by its line number; decisions are bounded labels.
func TestDecisionsAreCountedByRule(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	p := startProxy(t, "!127.0.0.3\n127.0.0.2", nil)
	p.get(t, "http://127.0.0.2:"+o.port()+"/")
	p.get(t, "http://127.0.0.3:"+o.port()+"/")
	p.get(t, "http://127.0.0.4:"+o.port()+"/")
	for _, c := range []struct {
		decision, rule string
		want           float64
	}{{"allow", "2", 1}, {"deny", "1", 1}, {"deny", "none", 1}, {"allow", "1", 0}} {
		if got := value(p.Metrics.Requests.WithLabelValues(c.decision, c.rule)); got != c.want {
			t.Errorf("requests{decision=%s,rule=%s} = %v, want %v", c.decision, c.rule, got, c.want)
		}
	}
}

// A deny name rule holds whichever full stop the client spells the name with: IDNA
// reads U+3002, U+FF0E and U+FF61 as '.', so the proxy, -explain, the decision log and
// the resolver all see the name the rules name. Before, the mapping left a trailing
// dot that no rule matched and "*" let the request through.
func TestDenyNameRulesHoldForUnicodeFullStops(t *testing.T) {
	o := startOrigin(t, "127.0.0.2:0", nil)
	echo, _ := echoServer(t, "127.0.0.2:0")
	// Both spellings resolve, as they do on a real resolver, so only the rules decide.
	dns := newDNS(map[string]string{
		"db.internal.example.com": "127.0.0.2", "db.internal.example.com.": "127.0.0.2",
		"secret.example.com": "127.0.0.2", "secret.example.com.": "127.0.0.2",
	})
	// The origin's loopback address is named so that the guard lets it through: what
	// the deny rules do not refuse is allowed.
	rules := "!*.internal.example.com\n!secret.example.com\n127.0.0.2\n*"
	p := startProxy(t, rules, dns, func(s *Server) { s.ConnectPorts = []uint16{echo} })
	for _, tc := range []struct {
		host, name string
		rule       int
	}{
		{"db.internal.example.com\uff61", "db.internal.example.com", 0},
		{"db\u3002internal.example.com", "db.internal.example.com", 0},
		{"secret.example.com\uff0e", "secret.example.com", 1},
		{"secret.example.com\u3002", "secret.example.com", 1},
	} {
		t.Run(tc.host, func(t *testing.T) {
			raw := "GET http://" + tc.host + ":" + o.port() + "/ HTTP/1.1\r\nConnection: close\r\n\r\n"
			if got := p.exchange(t, raw); statusOf(got) != 403 {
				t.Errorf("GET: %q, want 403", got)
			}
			if _, _, status := connect(t, p, tc.host+":"+strconv.Itoa(int(echo)), ""); status != 403 {
				t.Errorf("CONNECT: status %d, want 403", status)
			}
			for _, want := range []string{
				`"target":"` + tc.name + ":" + o.port() + `"`,
				`"target":"` + tc.name + ":" + strconv.Itoa(int(echo)) + `"`,
			} {
				if !strings.Contains(p.logs.String(), want) {
					t.Errorf("the decision log lacks %s", want)
				}
			}
			e, err := Explain(context.Background(), Rules{Policy: mustPolicy(t, rules)}, dns.resolve, tc.host)
			if err != nil || e.Target != tc.name+":80" || e.Refused == nil || e.Refused.Rule != tc.rule {
				t.Errorf("-explain: %+v, %v; want %s:80 refused by rule %d", e, err, tc.name, tc.rule+1)
			}
		})
	}
	if n := len(o.received()); n != 0 {
		t.Fatalf("the origin received %d requests", n)
	}
}
