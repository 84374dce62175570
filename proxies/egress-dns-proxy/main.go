// Command egress-dns-proxy is the TCP forwarder of dns-proxy mode: each line's local
// port is relayed to a host name re-resolved at run time, from the reserved source
// address. See the README's "DNS proxy" section for the flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/connlimit"
	"github.com/egress-router/egress-router/pkg/forwarder"
	"github.com/egress-router/egress-router/pkg/logging"
	"github.com/egress-router/egress-router/pkg/monitor"
	"github.com/egress-router/egress-router/pkg/relay"
	"github.com/egress-router/egress-router/pkg/reload"
	"github.com/egress-router/egress-router/pkg/resolver"
	"github.com/egress-router/egress-router/pkg/version"
)

// debugEnv is the legacy image's switch for debug logs on stdout.
const debugEnv = "EGRESS_DNS_PROXY_DEBUG"

type options struct {
	configFile     string
	check          bool
	showVersion    bool
	listenAddr     string
	metricsAddr    string
	dnsServers     string
	dnsTimeout     time.Duration
	ttlFloor       time.Duration
	ttlCeiling     time.Duration
	preferIPv6     bool
	dialTimeout    time.Duration
	idleTimeout    time.Duration
	grace          time.Duration
	maxConns       int
	maxPerClient   int
	reloadInterval time.Duration
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.configFile, "config", "", "configuration `file` (the NetworkAttachmentDefinition's JSON); default: the legacy EGRESS_DNS_PROXY_DESTINATION variable")
	flag.BoolVar(&o.check, "check", false, "validate the configuration, print the forwarding table with the addresses names resolve to now, and exit")
	flag.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	flag.StringVar(&o.listenAddr, "listen-address", "", "`address` the lines' listeners bind (default all addresses)")
	flag.StringVar(&o.metricsAddr, "metrics-listen", ":9090", "`host:port` of /metrics, /healthz and /readyz")
	flag.StringVar(&o.dnsServers, "dns-server", "", "comma-separated `host:port` name servers (default the nameservers of /etc/resolv.conf)")
	flag.DurationVar(&o.dnsTimeout, "dns-timeout", 2*time.Second, "timeout of one DNS query to one server")
	flag.DurationVar(&o.ttlFloor, "ttl-floor", resolver.DefaultFloor, "shortest time an answer is kept, whatever its TTL")
	flag.DurationVar(&o.ttlCeiling, "ttl-ceiling", resolver.DefaultCeiling, "longest time an answer is kept, whatever its TTL")
	flag.BoolVar(&o.preferIPv6, "prefer-ipv6", false, "dial IPv6 addresses before IPv4 ones")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "timeout of one connection attempt to a destination")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close a connection after this long without data either way (0: never)")
	flag.DurationVar(&o.grace, "drain-grace", 30*time.Second, "on SIGTERM, how long open connections may finish before they are closed")
	flag.IntVar(&o.maxConns, "max-connections", 3000, "open connections across all lines (0: no cap); each costs about 6 file descriptors")
	flag.IntVar(&o.maxPerClient, "max-connections-per-client", 1000, "open connections from one client address (0: no cap)")
	flag.DurationVar(&o.reloadInterval, "reload-interval", 2*time.Second, "how often the -config file is checked for changes (SIGHUP reloads at once)")
	flag.Parse()
	return o
}

func main() { os.Exit(run(parseFlags())) }

func run(o options) int {
	if o.showVersion {
		fmt.Println("egress-dns-proxy", version.Version)
		return 0
	}
	cfg, data, err := config.ForProxy(config.DNSProxy, o.configFile, os.Getenv)
	if err == nil {
		err = servable(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := &resolver.Resolver{Timeout: o.dnsTimeout}
	if o.dnsServers != "" {
		res.Servers = strings.Split(o.dnsServers, ",")
	}
	if o.check {
		printTable(os.Stdout, cfg, res)
		return 0
	}
	log, closeLog, err := openLog(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeLog.Close()
	if err := serve(o, cfg, data, res, log); err != nil {
		log.Error("egress-dns-proxy stopped", "error", err)
		return 1
	}
	return 0
}

// servable refuses a configuration this binary cannot serve; used at start and reload.
func servable(cfg *config.Config) error {
	if cfg.Mode != config.DNSProxy {
		return fmt.Errorf("mode is %q; egress-dns-proxy serves mode %q", cfg.Mode, config.DNSProxy)
	}
	return nil
}

// openLog writes to log_file, or stderr; the legacy debug variable sends debug logs to
// stdout, where the old image wrote them.
func openLog(cfg *config.Config) (*slog.Logger, io.Closer, error) {
	if os.Getenv(debugEnv) != "" {
		return logging.New(os.Stdout, slog.LevelDebug), io.NopCloser(nil), nil
	}
	return logging.Open(cfg.LogFile, cfg.LogLevel, os.Stderr)
}

func serve(o options, cfg *config.Config, data []byte, res *resolver.Resolver, log *slog.Logger) error {
	f := &forwarder.Forwarder{
		ListenAddr:  o.listenAddr,
		Resolver:    res,
		TTLFloor:    o.ttlFloor,
		TTLCeiling:  o.ttlCeiling,
		PreferIPv6:  o.preferIPv6,
		DialTimeout: o.dialTimeout,
		Relay:       relay.Relay{IdleTimeout: o.idleTimeout},
		Limiter:     &connlimit.Limiter{Max: o.maxConns, PerClient: o.maxPerClient},
		Log:         log,
	}
	if err := f.Apply(cfg); err != nil {
		return err
	}
	metricsLn, err := net.Listen("tcp", o.metricsAddr)
	if err != nil {
		f.Shutdown(context.Background())
		return fmt.Errorf("metrics listener: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(f)
	mon := &monitor.Server{Registry: reg, Ready: f.Ready}
	go func() {
		if err := mon.Serve(ctx, metricsLn); err != nil {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	if o.configFile != "" {
		w := &reload.Watcher{Path: o.configFile, Interval: o.reloadInterval, Log: log, Apply: func(data []byte) error {
			c, err := config.Load(data)
			if err == nil {
				err = servable(c)
			}
			if err != nil {
				return err
			}
			return f.Apply(c)
		}}
		w.Start(ctx, data)
	} else {
		// The environment cannot change under a running process; SIGHUP must not kill it.
		signal.Ignore(syscall.SIGHUP)
	}
	log.Info("egress-dns-proxy serving", "version", version.Version, "lines", cfg.DNSProxy.Lines(), "metrics", metricsLn.Addr().String())
	<-ctx.Done()
	log.Info("stopping: no new connections; open ones may finish", "grace", o.grace)
	grace, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	if cut := f.Shutdown(grace); cut > 0 {
		log.Warn("grace period over: connections closed", "connections", cut)
	}
	log.Info("stopped")
	return nil
}
