package proxyflags

import "time"

// Shared is what both proxies' command lines set, under the same names.
type Shared struct {
	ConfigFile     string        // -config: the configuration document; "" for the legacy environment
	Version        bool          // -version
	Listen         string        // -listen: see Proxy for its form
	MetricsListen  string        // -metrics-listen: HOST:PORT, "" for none
	DNSServers     []string      // -dns-server: "host:port" each; none for /etc/resolv.conf's
	DNSTimeout     time.Duration // -dns-timeout: one query to one server
	DialTimeout    time.Duration // -dial-timeout
	IdleTimeout    time.Duration // -idle-timeout: see Proxy for its meaning
	MaxConns       int           // -max-connections: 0 for no cap
	MaxPerClient   int           // -max-connections-per-client: 0 for no cap
	DrainGrace     time.Duration // -drain-grace
	ReloadInterval time.Duration // -reload-interval
}

// The defaults both proxies share.
const (
	// A connection cap is there to refuse a client cleanly before the process runs
	// out of file descriptors, which would fail every connection alike. A relayed
	// connection carrying bulk data holds about 6 descriptors (its two sockets and a
	// splice pipe each way), whether it is a DNS proxy line's or an HTTP proxy's
	// CONNECT tunnel. Under a hard limit of 20000 open files (the pods' here; container
	// runtimes differ), 3000 connections are 18000 descriptors, leaving room for
	// listeners, DNS and metrics.
	// One client may take a third: a single busy or misbehaving pod cannot starve the
	// others.
	defaultMaxConns     = 3000
	defaultMaxPerClient = 1000
	// maxConns bounds the caps: no process holds more descriptors than fs.nr_open's
	// default, 1048576, and a cap beyond that is a typing error.
	maxConns = 1 << 20

	defaultMetricsListen = ":9090"
	// defaultDNSTimeout is glibc's and the resolver's per-query wait.
	defaultDNSTimeout = 2 * time.Second
	// defaultDialTimeout lets a destination across a slow or lossy path answer after
	// a lost SYN or two (retried at 1 s, 3 s), without a client waiting on a dead one
	// for the kernel's two minutes.
	defaultDialTimeout = 10 * time.Second
	// defaultDrainGrace is Kubernetes' default terminationGracePeriodSeconds: the
	// kubelet kills the pod then anyway.
	defaultDrainGrace     = 30 * time.Second
	defaultReloadInterval = 2 * time.Second
)

// Proxy is one of the two proxies, as far as the shared flags differ between them:
// in how they listen, and in what an idle connection is.
type Proxy struct {
	name      string
	configEnv string // the legacy variable a missing -config falls back to

	listen      string // -listen's default
	listenForm  listenForm
	listenUsage string

	idleTimeout      time.Duration // -idle-timeout's default
	idleTimeoutRange Durations
	idleTimeoutUsage string

	renamed []rename // the shared flags' deprecated spellings
}

// rename is a flag's old spelling, kept as a deprecated alias of the new.
type rename struct{ old, new string }

// HTTPProxy is egress-http-proxy: one listener; its idle timeout bounds the wait for
// a client's next request and each read or write of a body. Zero is not "never"
// there: a keep-alive connection is cheap for a client to open again (it retries a
// request on a closed one) but holds a slot of the cap while it waits. Tunnels have
// their own bound, -tunnel-idle-timeout.
var HTTPProxy = Proxy{
	name:             "egress-http-proxy",
	configEnv:        "EGRESS_HTTP_PROXY_DESTINATION",
	listen:           ":8080",
	listenForm:       hostPort,
	listenUsage:      "`HOST:PORT` the proxy listens on; HOST an IP address, or empty for all",
	idleTimeout:      2 * time.Minute,
	idleTimeoutRange: Positive,
	idleTimeoutUsage: "close a client connection after this long without a request, or waiting on a body's read or write",
}

// DNSProxy is egress-dns-proxy: one listener per configuration line, on the line's
// port, so -listen is an address alone; its idle timeout closes a relayed connection
// quiet both ways, off by default as for the HTTP proxy's tunnels (an hour there):
// the bytes are any protocol's (a database pool, SSH) whose connections may rightly
// stay quiet for long, and a cut one breaks its session.
var DNSProxy = Proxy{
	name:             "egress-dns-proxy",
	configEnv:        "EGRESS_DNS_PROXY_DESTINATION",
	listen:           "",
	listenForm:       hostOnly,
	listenUsage:      "IP `address` every line's listener binds, on the line's port; empty for all addresses",
	idleTimeout:      0,
	idleTimeoutRange: NotNegative,
	idleTimeoutUsage: "close a connection after this long without data either way (0: never)",
	renamed:          []rename{{old: "listen-address", new: "listen"}},
}

// define defines the shared flags into sh.
func (p Proxy) define(s *Set, sh *Shared) {
	s.String(&sh.ConfigFile, "config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy "+p.configEnv+" variable")
	s.Bool(&sh.Version, "version", false, "print the version and exit")
	sh.Listen = p.listen
	s.fs.Var(listenAddr{&sh.Listen, p.listenForm}, "listen", p.listenUsage)
	sh.MetricsListen = defaultMetricsListen
	s.fs.Var(listenAddr{&sh.MetricsListen, hostPortOrNone}, "metrics-listen", "`HOST:PORT` of /metrics, /healthz and /readyz (HOST an IP address or empty for all); empty: none")
	s.fs.Var(serverList{&sh.DNSServers}, "dns-server", "comma-separated name `servers`, IP or IP:PORT (port 53 by default), tried in order; default: the nameservers of /etc/resolv.conf")
	s.Duration(&sh.DNSTimeout, "dns-timeout", defaultDNSTimeout, Positive, "timeout of one DNS query to one server")
	s.Duration(&sh.DialTimeout, "dial-timeout", defaultDialTimeout, Positive, "bound on connecting to a destination")
	s.Duration(&sh.IdleTimeout, "idle-timeout", p.idleTimeout, p.idleTimeoutRange, p.idleTimeoutUsage)
	s.Int(&sh.MaxConns, "max-connections", defaultMaxConns, 0, maxConns, "client connections open at once, in all (0: no cap); a relayed one holds about 6 file descriptors")
	s.Int(&sh.MaxPerClient, "max-connections-per-client", defaultMaxPerClient, 0, maxConns, "client connections open at once from one client address (0: no cap)")
	s.Duration(&sh.DrainGrace, "drain-grace", defaultDrainGrace, NotNegative, "on SIGTERM, how long open connections may finish before they are closed (0: close at once)")
	s.Duration(&sh.ReloadInterval, "reload-interval", defaultReloadInterval, Polling, "how often the -config file is checked for changes (SIGHUP reloads at once)")
	for _, r := range p.renamed {
		s.Alias(r.old, r.new)
	}
}
