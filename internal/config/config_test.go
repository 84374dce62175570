package config

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/egress-router/egress-router/internal/redirect"
)

func load(t *testing.T, path string) *Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(data)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return c
}

func TestLoadsCNORenderedConfigUnchanged(t *testing.T) {
	c := load(t, "testdata/cno-rendered.json")
	if c.CNIVersion != "0.4.0" || c.Name != "egress-router-cni-nad" || c.Type != "egress-router" {
		t.Errorf("CNI fields: %+v", c.PluginConf)
	}
	if c.Mode != Redirect || c.Backend != Auto || c.InterfaceType != Macvlan || c.Interface.Mode != "bridge" {
		t.Errorf("defaults: mode=%s backend=%s type=%s ifmode=%s", c.Mode, c.Backend, c.InterfaceType, c.Interface.Mode)
	}
	wantAddrs := []netip.Prefix{netip.MustParsePrefix("192.0.2.99/24")}
	if !reflect.DeepEqual(c.IP.Addresses, wantAddrs) || !reflect.DeepEqual(c.IP.Gateways, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Errorf("addressing: %v via %v", c.IP.Addresses, c.IP.Gateways)
	}
	wantLines := []string{"80 udp 10.0.0.99", "8080 tcp 203.0.113.26 80", "8443 tcp 203.0.113.26 443", "203.0.113.27"}
	if got := c.IP.Redirect.Lines(); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("destinations = %q, want %q", got, wantLines)
	}
	if c.LogFile != "/tmp/egress-router-log" || c.LogLevel != slog.LevelDebug {
		t.Errorf("logging: %q %v", c.LogFile, c.LogLevel)
	}
}

func TestLoadsOlderEgressRouterCNIExample(t *testing.T) {
	c := load(t, "testdata/egress-router-cni-example.json")
	if c.Interface != (Interface{Master: "eth1", Mode: "bridge", MTU: 1450}) {
		t.Errorf("interfaceArgs = %+v", c.Interface)
	}
	if c.IP.Redirect.Fallback != netip.MustParseAddr("203.0.113.27") || len(c.IP.Redirect.Rules) != 2 {
		t.Errorf("destinations = %+v", c.IP.Redirect)
	}
}

func TestLoadsDesignExample(t *testing.T) {
	c := load(t, "testdata/design-example.json")
	if c.Interface.MTU != 1500 || len(c.IP.Gateways) != 2 {
		t.Errorf("mtu %d, gateways %v", c.Interface.MTU, c.IP.Gateways)
	}
	v6 := netip.MustParseAddr("2001:db8:20::5")
	if src, _ := c.IP.Sources().For(v6); src != netip.MustParseAddr("2001:db8:12::99") {
		t.Errorf("IPv6 source = %s", src)
	}
	if gw, _ := c.IP.Gateway(v6); gw != netip.MustParseAddr("2001:db8:12::1") {
		t.Errorf("IPv6 gateway = %s", gw)
	}
	if got := c.HTTPProxy.Lines(); !reflect.DeepEqual(got, []string{"!*.internal.example.com", "10.20.0.0/16", "*.example.com"}) {
		t.Errorf("httpProxy = %q", got)
	}
	if got := c.DNSProxy.Lines(); !reflect.DeepEqual(got, []string{"80 203.0.113.25", "8443 api.example.com 443"}) {
		t.Errorf("dnsProxy = %q", got)
	}
}

func TestRenderedConfigLoadsEqual(t *testing.T) {
	for _, f := range []string{"testdata/cno-rendered.json", "testdata/egress-router-cni-example.json", "testdata/design-example.json"} {
		c := load(t, f)
		assertRoundTrip(t, c)
	}
}

func assertRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	again, err := Load(out)
	if err != nil {
		t.Fatalf("rendered config does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(owned(c), owned(again)) {
		t.Fatalf("round trip changed the configuration:\n%+v\n%+v\n%s", owned(c), owned(again), out)
	}
	out2, err := json.Marshal(again)
	if err != nil || string(out2) != string(out) {
		t.Fatalf("second render differs:\n%s\n%s", out, out2)
	}
}

// owned is the part of a Config the project defines; the standard CNI fields are
// compared by their rendering (empty and absent maps are the same to CNI).
func owned(c *Config) Config {
	o := *c
	o.PluginConf = c.PluginConf
	o.PluginConf.Capabilities, o.PluginConf.RawPrevResult = nil, nil
	o.PluginConf.DNS, o.PluginConf.IPAM = c.DNS, c.IPAM
	o.PluginConf.DNS.Nameservers, o.PluginConf.DNS.Search, o.PluginConf.DNS.Options = nil, nil, nil
	o.PluginConf.ValidAttachments = nil
	return o
}

func TestHAEnabledLoadsAndRendersBack(t *testing.T) {
	for _, tc := range []struct {
		name, ha string
		want     bool
	}{
		{"absent", ``, false},
		{"enabled", `, "ha": {"enabled": true}`, true},
		{"disabled", `, "ha": {"enabled": false}`, false},
		{"empty object", `, "ha": {}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]byte(`{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "fallbackIP": "203.0.113.27"}` + tc.ha + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if c.HA.Enabled != tc.want {
				t.Fatalf("HA.Enabled = %v, want %v", c.HA.Enabled, tc.want)
			}
			assertRoundTrip(t, c)
		})
	}
}

func TestDestinationsAsOneMultiLineString(t *testing.T) {
	c, err := Load([]byte(`{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1",
		"destinations": "# pasted EGRESS_DESTINATION\n80   tcp 203.0.113.25\n8080 tcp 203.0.113.26 80\n203.0.113.27\n"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := redirect.Table{
		Rules: []redirect.Rule{
			{Port: 80, Proto: redirect.TCP, Target: netip.MustParseAddr("203.0.113.25"), TargetPort: 80},
			{Port: 8080, Proto: redirect.TCP, Target: netip.MustParseAddr("203.0.113.26"), TargetPort: 80},
		},
		Fallback: netip.MustParseAddr("203.0.113.27"),
	}
	if !reflect.DeepEqual(c.IP.Redirect, want) {
		t.Fatalf("got %+v", c.IP.Redirect)
	}
}

// Lines are a list of strings or one multi-line string; every other JSON kind is named.
func TestDecodeLinesOverEveryJSONKind(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    []string
		wantErr string
	}{
		{raw: `["a", "b"]`, want: []string{"a", "b"}},
		{raw: ` "a\nb"`, want: []string{"a\nb"}},
		{raw: `null`, want: []string{""}},
		{raw: ``},
		{raw: `[["a"]]`, wantErr: "got a list"},
		{raw: `[1]`, wantErr: "got a list"},
		{raw: `{"a": 1}`, wantErr: "got an object"},
		{raw: `true`, wantErr: "got a boolean"},
		{raw: `8`, wantErr: "got a number"},
	} {
		got, err := decodeLines(json.RawMessage(tc.raw))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), "want a list of strings or one multi-line string, "+tc.wantErr) {
				t.Errorf("%s: error %v, want one ending %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

func TestBareAddressMeansHostPrefix(t *testing.T) {
	c, err := Load([]byte(`{"mode": "HTTP-Proxy", "ip": {"addresses": ["192.0.2.99", "2001:db8::99"]}, "httpProxy": {"destinations": ["*"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.99/32"), netip.MustParsePrefix("2001:db8::99/128")}
	if !reflect.DeepEqual(c.IP.Addresses, want) || c.Mode != HTTPProxy {
		t.Fatalf("got %v mode %s", c.IP.Addresses, c.Mode)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{
			name: "every field wrong at once",
			doc: `{"mode": "nat", "backend": "ebpf", "interfaceType": "ipvlan",
				"interfaceArgs": {"master": "a/b", "mode": "l2", "mtu": "9x"},
				"ip": {"addresses": ["192.0.2.99/33"], "gateway": "192.0.2.1.5",
					"destinations": ["203.0.113.27", "80 tcp 203.0.113.25"]},
				"log_level": "verbose"}`,
			want: []string{
				`mode: "nat" is not one of redirect, http-proxy, dns-proxy`,
				`backend: "ebpf" is not one of auto, nftables, iptables`,
				`interfaceType: "ipvlan" is not one of macvlan`,
				`interfaceArgs.master: "a/b" is not a valid interface name`,
				`interfaceArgs.mode: "l2" is not one of bridge, private, vepa, passthru`,
				`interfaceArgs.mtu: "9x" is not an MTU (want 68-65535)`,
				`ip.addresses: "192.0.2.99/33" has an invalid mask /33 (want 0-32)`,
				`ip.gateway: "192.0.2.1.5" is not an IP address`,
				`ip.destinations: line 1 "203.0.113.27": a fallback address (a line with only an IP) must be the last line`,
				`log_level: "verbose" is not one of debug, info, warning, error`,
			},
		},
		{
			name: "fallback twice",
			doc:  `{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "destinations": ["203.0.113.27"], "fallbackIP": "203.0.113.28"}}`,
			want: []string{`ip.fallbackIP: a fallback is also the last line of ip.destinations; keep one`},
		},
		{
			name: "fallbackIP is a range",
			doc:  `{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "fallbackIP": "203.0.113.0/24"}}`,
			want: []string{
				`ip.fallbackIP: line 1 "203.0.113.0/24": "203.0.113.0/24" is a range; a destination must be a single IP address`,
			},
		},
		{
			name: "misspelt owned fields",
			doc: `{"Mode": "redirect", "logLevel": "debug", "ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1",
				"destination": ["80 tcp 203.0.113.25"], "fallbackIp": "203.0.113.27"}, "interfaceArgs": {"MTU": "1500"}}`,
			want: []string{
				`Mode: unknown field "Mode": did you mean "mode"?`,
				`interfaceArgs.MTU: unknown field "MTU" in interfaceArgs: did you mean "mtu"?`,
				`ip.destination: unknown field "destination" in ip: did you mean "destinations"?`,
				`ip.fallbackIp: unknown field "fallbackIp" in ip: did you mean "fallbackIP"?`,
				`logLevel: unknown field "logLevel": did you mean "log_level"?`,
			},
		},
		{
			name: "ha refuses every field but enabled",
			doc: `{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "fallbackIP": "203.0.113.27"},
				"ha": {"enabled": true, "Enable": true, "leaseDuration": "15s"}}`,
			want: []string{
				`ha.Enable: unknown field "Enable" in ha: did you mean "enabled"?`,
				`ha.leaseDuration: unknown field "leaseDuration" in ha: ha has only "enabled"`,
			},
		},
		{
			name: "ha misspelt or of the wrong type",
			doc: `{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "fallbackIP": "203.0.113.27"},
				"HA": {"enabled": true}, "ha": {"enabled": "yes"}}`,
			want: []string{
				`HA: unknown field "HA": did you mean "ha"?`,
				`ha.enabled: want true or false, got a JSON string`,
			},
		},
		{
			name: "ha is an object",
			doc:  `{"ip": {"addresses": ["192.0.2.99/24"], "gateway": "192.0.2.1", "fallbackIP": "203.0.113.27"}, "ha": true}`,
			want: []string{`ha: want an object, got a JSON bool`},
		},
		{
			name: "no address, nothing to redirect",
			doc:  `{"cniVersion": "1.0.0"}`,
			want: []string{
				`ip.addresses: at least one reserved address is required`,
				`ip.destinations: redirect mode needs at least one destination line or ip.fallbackIP`,
			},
		},
		{
			name: "destinations that cannot leave through net1",
			doc: `{"ip": {"addresses": ["192.0.2.99/24"], "destinations": ["80 tcp 203.0.113.25", "81 tcp 192.0.2.50", "443 tcp 2001:db8::5"]},
				"mode": "redirect"}`,
			want: []string{
				`ip.destinations: 203.0.113.25 is outside the reserved subnets and there is no IPv4 gateway to reach it`,
				`ip.destinations: 2001:db8::5 is an IPv6 destination but ip.addresses has no IPv6 address`,
			},
		},
		{
			name: "gateways",
			doc: `{"ip": {"addresses": ["192.0.2.99/24", "192.0.2.99/24"], "gateways": ["192.0.2.1", "192.0.2.2", "2001:db8::1", "192.0.2.99"],
				"fallbackIP": "192.0.2.7"}}`,
			want: []string{
				`ip.addresses: 192.0.2.99 is listed twice`,
				`ip.gateways: 192.0.2.2: only one IPv4 gateway is allowed (192.0.2.1 is already one)`,
				`ip.gateways: 2001:db8::1 is an IPv6 gateway but ip.addresses has no IPv6 address`,
				`ip.gateways: 192.0.2.99 is also a reserved address`,
				`ip.gateways: 192.0.2.99: only one IPv4 gateway is allowed (192.0.2.1 is already one)`,
			},
		},
		{
			name: "reserved address is not a host address",
			doc:  `{"ip": {"addresses": ["192.0.2.0/24", "192.0.2.255/24", "127.0.0.1", "fe80::1/64", "255.255.255.255/32", "0.1.2.3/8", "240.0.0.9"], "fallbackIP": "192.0.2.7"}}`,
			want: []string{
				`ip.addresses: "192.0.2.0/24" is the network or broadcast address of its subnet, not a host address`,
				`ip.addresses: "192.0.2.255/24" is the network or broadcast address of its subnet, not a host address`,
				`ip.addresses: "127.0.0.1" cannot be a reserved address (unspecified, loopback, multicast or link-local)`,
				`ip.addresses: "fe80::1/64" cannot be a reserved address (unspecified, loopback, multicast or link-local)`,
				`ip.addresses: "255.255.255.255/32" cannot be a reserved address (0.0.0.0/8 means this network, 240.0.0.0/4 is reserved and holds the limited broadcast)`,
				`ip.addresses: "0.1.2.3/8" cannot be a reserved address (0.0.0.0/8 means this network, 240.0.0.0/4 is reserved and holds the limited broadcast)`,
				`ip.addresses: "240.0.0.9" cannot be a reserved address (0.0.0.0/8 means this network, 240.0.0.0/4 is reserved and holds the limited broadcast)`,
			},
		},
		{
			name: "proxy modes need their lists, and every bad rule is named",
			doc: `{"mode": "http-proxy", "ip": {"addresses": ["192.0.2.99/24"]},
				"httpProxy": {"destinations": ["*", "!*"]}, "dnsProxy": {"destinations": "80 a.example\n80 b.example"}}`,
			want: []string{
				`httpProxy.destinations: line 1 "*": "*" (allow everything not denied above) must be the last line`,
				`httpProxy.destinations: line 2 "!*": "!*" is not allowed: everything no rule allows is already denied`,
				`dnsProxy.destinations: line 2 "80 b.example": local port 80 is already used on line 1`,
			},
		},
		{
			name: "wrong JSON types are named by field, and the rest is still checked",
			doc:  `{"ip": {"addresses": "192.0.2.99/24", "destinations": 80}, "interfaceArgs": {"mtu": true}, "mode": "x"}`,
			want: []string{
				`ip.addresses: want a list of strings, got a JSON string`,
				`mode: "x" is not one of redirect, http-proxy, dns-proxy`,
				`interfaceArgs.mtu: want a number or a string holding one, got a boolean`,
				`ip.addresses: at least one reserved address is required`,
				`ip.destinations: want a list of strings or one multi-line string, got a number`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.doc))
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			got := strings.Split(err.Error(), "\n")
			if !sameSet(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}

func TestInvalidJSON(t *testing.T) {
	_, err := Load([]byte(`{"ip": `))
	if err == nil || !strings.HasPrefix(err.Error(), "configuration is not valid JSON: ") {
		t.Fatalf("got %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"EGRESS_SOURCE":                 "192.0.2.99",
		"EGRESS_GATEWAY":                "192.0.2.1",
		"EGRESS_HTTP_PROXY_DESTINATION": "# from an old pod spec\n!*.internal.example.com\n203.0.113.0/24\n*.example.com\n",
		"EGRESS_DNS_PROXY_DESTINATION":  "80 203.0.113.25\n8443 api.example.com 443\n",
	}
	c, err := FromEnv(HTTPProxy, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HTTPProxy.Lines(); !reflect.DeepEqual(got, []string{"!*.internal.example.com", "203.0.113.0/24", "*.example.com"}) {
		t.Errorf("http rules %q", got)
	}
	if !reflect.DeepEqual(c.IP.Addresses, []netip.Prefix{netip.MustParsePrefix("192.0.2.99/32")}) {
		t.Errorf("source %v", c.IP.Addresses)
	}
	d, err := FromEnv(DNSProxy, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := d.DNSProxy.Lines(); !reflect.DeepEqual(got, []string{"80 203.0.113.25", "8443 api.example.com 443"}) {
		t.Errorf("dns lines %q", got)
	}

	noSource, err := FromEnv(DNSProxy, func(k string) string { return map[string]string{"EGRESS_DNS_PROXY_DESTINATION": "80 a.example"}[k] })
	if err != nil || len(noSource.IP.Addresses) != 0 {
		t.Errorf("EGRESS_SOURCE is optional: %v %v", noSource, err)
	}

	_, err = FromEnv(HTTPProxy, func(k string) string {
		return map[string]string{"EGRESS_SOURCE": "192.0.2.300", "EGRESS_HTTP_PROXY_DESTINATION": "ok.example\n!*"}[k]
	})
	want := []string{
		`EGRESS_SOURCE: "192.0.2.300" is not an IP address`,
		`EGRESS_HTTP_PROXY_DESTINATION: line 2 "!*": "!*" is not allowed: everything no rule allows is already denied`,
	}
	if err == nil || !sameSet(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("errors name the variables:\n%v", err)
	}
	_, err = FromEnv(HTTPProxy, func(string) string { return "" })
	if err == nil || err.Error() != "EGRESS_HTTP_PROXY_DESTINATION: http-proxy mode needs at least one rule (everything else is denied)" {
		t.Errorf("empty rules: %v", err)
	}
}

func TestForProxyReadsTheFileOrTheEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.json")
	doc := `{"mode": "dns-proxy", "ip": {"addresses": ["192.0.2.99/24"]}, "dnsProxy": {"destinations": ["80 203.0.113.25", "8443 api.example.com 443"]}}`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, data, err := ForProxy(DNSProxy, file, nil)
	if err != nil || string(data) != doc || len(c.DNSProxy.Rules) != 2 {
		t.Fatalf("from file: %v, %d bytes, %+v", err, len(data), c)
	}
	env := map[string]string{"EGRESS_DNS_PROXY_DESTINATION": "80 a.example"}
	c, data, err = ForProxy(DNSProxy, "", func(k string) string { return env[k] })
	if err != nil || data != nil || len(c.DNSProxy.Rules) != 1 {
		t.Fatalf("from env: %v, %v, %+v", err, data, c)
	}
	if _, _, err := ForProxy(DNSProxy, "testdata/missing.json", nil); err == nil || !strings.Contains(err.Error(), "read configuration") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadForRefusesAnotherModesDocument(t *testing.T) {
	data, err := os.ReadFile("testdata/design-example.json") // mode redirect
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFor(HTTPProxy, data); err == nil || err.Error() != `mode: "redirect" is not "http-proxy", the mode this proxy serves` {
		t.Fatalf("got %v", err)
	}
	if c, err := LoadFor(Redirect, data); err != nil || c.Mode != Redirect {
		t.Fatalf("own mode: %v", err)
	}
}
