// Package lifecycle is the life both proxies share around what they serve: reloading
// the configuration (the -config file changing, SIGHUP), the metrics and health
// server, and on SIGTERM or SIGINT a drain bounded by a grace period.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/monitor"
	"github.com/egress-router/egress-router/internal/reload"
)

// Proxy is a proxy as its lifecycle drives it.
type Proxy interface {
	// Apply takes a new configuration, already valid for the proxy's mode; it refuses
	// one it cannot serve and keeps the old.
	Apply(*config.Config) error
	// Ready is nil when the proxy can do its job (/readyz).
	Ready() error
	// Serve serves until Shutdown, then returns nil.
	Serve() error
	// Shutdown stops accepting and lets open connections finish until ctx ends; it
	// returns how many it had to close then.
	Shutdown(ctx context.Context) (cut int)
}

// Options are what a proxy's command line sets.
type Options struct {
	Mode config.Mode
	// ConfigFile is watched for changes; "" when configured from the legacy
	// environment, which cannot change under a running process.
	ConfigFile     string
	ReloadInterval time.Duration
	// MetricsListen is the address of /metrics, /healthz and /readyz; "" for none.
	MetricsListen string
	Registry      *prometheus.Registry
	DrainGrace    time.Duration
	Log           *slog.Logger
}

// Run serves p until SIGTERM or SIGINT, then drains it. data is the configuration
// file's content in effect (nil from the environment).
func Run(o Options, p Proxy, data []byte) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.MetricsListen != "" {
		ln, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mon := &monitor.Server{Registry: o.Registry, Ready: p.Ready}
		go func() {
			if err := mon.Serve(ctx, ln); err != nil {
				o.Log.Error("metrics server stopped", "error", err)
			}
		}()
	}
	watch(ctx, o, p, data)

	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second SIGTERM now ends the process at once
	o.Log.Info("draining: no new connections; open ones may finish", "grace", o.DrainGrace.String())
	grace, cancel := context.WithTimeout(context.Background(), o.DrainGrace)
	defer cancel()
	if cut := p.Shutdown(grace); cut > 0 {
		o.Log.Warn("grace period over: connections closed", "connections", cut)
	}
	if err := <-served; err != nil {
		return err
	}
	o.Log.Info("stopped")
	return nil
}

// watch applies the configuration file's new content until ctx ends. Without a file
// SIGHUP is ignored: its default action would end the process.
func watch(ctx context.Context, o Options, p Proxy, data []byte) {
	if o.ConfigFile == "" {
		signal.Ignore(syscall.SIGHUP)
		return
	}
	w := &reload.Watcher{Path: o.ConfigFile, Interval: o.ReloadInterval, Log: o.Log, Apply: func(data []byte) error {
		c, err := config.LoadFor(o.Mode, data)
		if err != nil {
			return err
		}
		return p.Apply(c)
	}}
	w.Start(ctx, data)
}
