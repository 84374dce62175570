package forwarder

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Per-line metrics, labelled by the line's local port only: the number of lines is
// bounded by the configuration, while host names and client addresses are not.
var (
	descActive     = lineDesc("connections_active", "Connections being relayed.")
	descTotal      = lineDesc("connections_total", "Connections accepted.")
	descSent       = lineDesc("sent_bytes_total", "Bytes relayed from clients to the destination, counted when a connection ends.")
	descReceived   = lineDesc("received_bytes_total", "Bytes relayed from the destination to clients, counted when a connection ends.")
	descDialErrors = lineDesc("dial_errors_total", "Connections closed because no address of the destination could be dialled.")
	descNoAddress  = lineDesc("no_address_total", "Connections closed because the destination had no address yet.")
	descAddresses  = lineDesc("addresses", "Addresses the destination currently resolves to, after the guard.")
	descAge        = lineDesc("resolution_age_seconds", "Time since the destination's name last resolved (absent for IP literal lines).")
	descFailures   = lineDesc("resolution_failures_total", "Failed re-resolutions of the destination's name.")
	descOverCap    = prometheus.NewDesc("egress_dns_proxy_connections_over_cap_total", "Connections refused because a connection cap was full.", nil, nil)
)

func lineDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("egress_dns_proxy_"+name, help, []string{"port"}, nil)
}

// Describe implements prometheus.Collector.
func (f *Forwarder) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descTotal, descSent, descReceived, descDialErrors, descNoAddress, descAddresses, descAge, descFailures, descOverCap} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the lines configured now.
func (f *Forwarder) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descOverCap, prometheus.CounterValue, float64(f.overCap.Load()))
	for _, port := range f.order {
		l := f.lines[port]
		// Addresses are those dialled now; resolution is of the configured name, which
		// after a reload to a new name is not dialled until it answers.
		serving, resolving := l.serving.Load(), l.configured
		label := strconv.Itoa(int(port))
		metric := func(d *prometheus.Desc, kind prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, kind, v, label)
		}
		metric(descActive, prometheus.GaugeValue, float64(l.stats.active.Load()))
		metric(descTotal, prometheus.CounterValue, float64(l.stats.total.Load()))
		metric(descSent, prometheus.CounterValue, float64(l.stats.sent.Load()))
		metric(descReceived, prometheus.CounterValue, float64(l.stats.received.Load()))
		metric(descDialErrors, prometheus.CounterValue, float64(l.stats.dialErrors.Load()))
		metric(descNoAddress, prometheus.CounterValue, float64(l.stats.noAddress.Load()))
		metric(descAddresses, prometheus.GaugeValue, float64(len(serving.dest.Addrs())))
		if resolving.rule.Host.Name != "" {
			metric(descFailures, prometheus.CounterValue, float64(resolving.dest.Failures()))
			if updated := resolving.dest.Updated(); !updated.IsZero() {
				metric(descAge, prometheus.GaugeValue, time.Since(updated).Seconds())
			}
		}
	}
}
