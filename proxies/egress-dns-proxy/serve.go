package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/connlimit"
	"github.com/egress-router/egress-router/pkg/forwarder"
	"github.com/egress-router/egress-router/pkg/monitor"
	"github.com/egress-router/egress-router/pkg/relay"
	"github.com/egress-router/egress-router/pkg/reload"
	"github.com/egress-router/egress-router/pkg/resolver"
	"github.com/egress-router/egress-router/pkg/version"
)

// serve forwards cfg's lines until SIGTERM or SIGINT, then drains.
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
	watchConfig(ctx, o, data, f, log)
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

// watchConfig applies the -config file's new content (on change or SIGHUP) until ctx
// ends; data is the content in effect. Without -config SIGHUP is ignored: the
// environment cannot change under a running process, and SIGHUP must not kill it.
func watchConfig(ctx context.Context, o options, data []byte, f *forwarder.Forwarder, log *slog.Logger) {
	if o.configFile == "" {
		signal.Ignore(syscall.SIGHUP)
		return
	}
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
}
