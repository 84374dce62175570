package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/connlimit"
	"github.com/egress-router/egress-router/internal/forwarder"
	"github.com/egress-router/egress-router/internal/lifecycle"
	"github.com/egress-router/egress-router/internal/relay"
	"github.com/egress-router/egress-router/internal/resolver"
	"github.com/egress-router/egress-router/internal/version"
)

// serve forwards cfg's lines until SIGTERM or SIGINT, then drains.
func serve(o options, cfg *config.Config, data []byte, res *resolver.Resolver, log *slog.Logger) error {
	f := forwarding{Forwarder: &forwarder.Forwarder{
		ListenAddr:  o.Listen,
		Resolver:    res,
		TTLFloor:    o.ttlFloor,
		TTLCeiling:  o.ttlCeiling,
		PreferIPv6:  o.preferIPv6,
		DialTimeout: o.DialTimeout,
		Relay:       relay.Relay{IdleTimeout: o.IdleTimeout},
		Limiter:     &connlimit.Limiter{Max: o.MaxConns, PerClient: o.MaxPerClient},
		Log:         log,
	}, stopped: make(chan struct{})}
	if err := f.SetRules(rulesOf(cfg)); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.Forwarder)
	log.Info("egress-dns-proxy serving", "version", version.Version, "lines", cfg.DNSProxy.Lines(), "metrics", o.MetricsListen)
	err := lifecycle.Run(lifecycle.Options{
		Mode:           config.DNSProxy,
		ConfigFile:     o.ConfigFile,
		ReloadInterval: o.ReloadInterval,
		MetricsListen:  o.MetricsListen,
		Registry:       reg,
		DrainGrace:     o.DrainGrace,
		Log:            log,
	}, f, data)
	if err != nil {
		f.Forwarder.Shutdown(context.Background())
	}
	return err
}

// forwarding is the forwarder as its lifecycle drives it: its listeners run from
// Apply, so serving is waiting for the shutdown.
type forwarding struct {
	*forwarder.Forwarder
	stopped chan struct{}
}

func (f forwarding) Apply(c *config.Config) error {
	return f.SetRules(rulesOf(c))
}

func (f forwarding) Serve() error {
	<-f.stopped
	return nil
}

func (f forwarding) Shutdown(ctx context.Context) int {
	defer close(f.stopped)
	return f.Forwarder.Shutdown(ctx)
}
