package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egress-router/egress-router/pkg/config"
	"github.com/egress-router/egress-router/pkg/connlimit"
	"github.com/egress-router/egress-router/pkg/httpproxy"
	"github.com/egress-router/egress-router/pkg/logging"
	"github.com/egress-router/egress-router/pkg/monitor"
	"github.com/egress-router/egress-router/pkg/reload"
)

// serve runs the proxy until SIGTERM (or SIGINT), then drains for the grace period.
func serve(o options, c *config.Config, data []byte) error {
	log, closer, err := logging.Open(c.LogFile, c.LogLevel, os.Stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	ports, err := parsePorts(o.connectPorts)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics := httpproxy.NewMetrics(reg)
	srv := &httpproxy.Server{
		Resolve:               newResolver(o.dnsServer),
		ConnectPorts:          ports,
		DialTimeout:           o.dialTimeout,
		HeaderTimeout:         o.headerTimeout,
		IdleTimeout:           o.idleTimeout,
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.configFile != "" {
		w := &reload.Watcher{Path: o.configFile, Interval: o.reloadInterval, Log: log, Apply: func(data []byte) error {
			c, err := config.Load(data)
			if err == nil {
				err = checkHasRules(c)
			}
			if err != nil {
				return err
			}
			srv.SetRules(rulesOf(c))
			return nil
		}}
		w.Start(ctx, data)
	} else {
		signal.Ignore(syscall.SIGHUP) // nothing to reload from the environment
	}

	tcp, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln := &connlimit.Listener{
		TCPListener: tcp.(*net.TCPListener),
		Limiter:     &connlimit.Limiter{Max: o.maxConns, PerClient: o.maxConnsPerClient},
		Rejected:    func(netip.Addr) { metrics.Rejected.Inc() },
		Failed:      func(err error) { log.Error("accept failed; waiting before the next", "error", err) },
	}
	if o.metricsListen != "" {
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		mon := &monitor.Server{Registry: reg, Ready: srv.Ready}
		go mon.Serve(ctx, mln)
	}
	log.Info("serving", "listen", ln.Addr().String(), "rules", len(c.HTTPProxy.Rules), "sources", fmt.Sprint(rulesOf(c).Sources))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second SIGTERM now ends the process at once
	log.Info("draining", "grace", o.drainGrace.String())
	drain, cancel := context.WithTimeout(context.Background(), o.drainGrace)
	defer cancel()
	if err := srv.Shutdown(drain); err != nil {
		log.Warn("grace period over; closed the connections still open", "error", err)
	}
	if err := <-served; !errors.Is(err, httpproxy.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func parsePorts(list string) ([]uint16, error) {
	var ports []uint16
	for _, s := range strings.Split(list, ",") {
		p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("-connect-ports: %q is not a port", s)
		}
		ports = append(ports, uint16(p))
	}
	return ports, nil
}
