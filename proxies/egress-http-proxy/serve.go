package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/httpproxy"
	"github.com/egress-router/egress-router/internal/lifecycle"
	"github.com/egress-router/egress-router/internal/logging"
)

// serve runs the proxy until SIGTERM (or SIGINT), then drains for the grace period.
func serve(o options, c *config.Config, data []byte) error {
	log, closer, err := logging.Open(c.LogFile, c.LogLevel, os.Stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	reg := prometheus.NewRegistry()
	metrics := httpproxy.NewMetrics(reg)
	srv := &httpproxy.Server{
		Resolve:               newResolver(o.DNSServers, o.DNSTimeout),
		ConnectPorts:          o.connectPorts,
		DialTimeout:           o.DialTimeout,
		HeaderTimeout:         o.headerTimeout,
		IdleTimeout:           o.IdleTimeout,
		UpstreamTimeout:       o.upstreamTimeout,
		TunnelIdleTimeout:     o.tunnelIdleTimeout,
		MaxHeaderBytes:        o.maxHeaderBytes,
		AddVia:                o.addVia,
		AddForwardedFor:       o.addForwardedFor,
		Metrics:               metrics,
		Log:                   log,
		DecisionLogsPerSecond: o.logsPerSecond,
	}
	srv.SetRules(rulesOf(c))
	tcp, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln := &connlimit.Listener{
		TCPListener: tcp.(*net.TCPListener),
		Limiter:     &connlimit.Limiter{Max: o.MaxConns, PerClient: o.MaxPerClient},
		Rejected:    func(netip.Addr) { metrics.Rejected.Inc() },
		Failed:      func(err error) { log.Error("accept failed; waiting before the next", "error", err) },
	}
	log.Info("serving", "listen", ln.Addr().String(), "rules", len(c.HTTPProxy.Rules), "sources", fmt.Sprint(rulesOf(c).Sources))
	return lifecycle.Run(lifecycle.Options{
		Mode:           config.HTTPProxy,
		ConfigFile:     o.ConfigFile,
		ReloadInterval: o.ReloadInterval,
		MetricsListen:  o.MetricsListen,
		Registry:       reg,
		DrainGrace:     o.DrainGrace,
		Log:            log,
	}, proxy{srv, ln}, data)
}

// proxy is the HTTP proxy as its lifecycle drives it.
type proxy struct {
	*httpproxy.Server
	ln *connlimit.Listener
}

func (p proxy) Apply(c *config.Config) error {
	p.SetRules(rulesOf(c))
	return nil
}

func (p proxy) Serve() error {
	if err := p.Server.Serve(p.ln); !errors.Is(err, httpproxy.ErrServerClosed) {
		return err
	}
	return nil
}
