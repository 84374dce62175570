package httpproxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics. Label values are bounded: decision is
// allow or deny, rule is a rule's 1-based line number (at most maxRuleLabels of them)
// or "none" (default deny, the destination guard, a malformed request).
type Metrics struct {
	Requests          *prometheus.CounterVec // plain HTTP requests by decision and rule
	Tunnels           *prometheus.CounterVec // CONNECT tunnels by decision and rule
	ActiveConnections prometheus.Gauge       // client connections open
	ActiveTunnels     prometheus.Gauge
	Bytes             *prometheus.CounterVec // by direction: sent (to upstream), received
	DialSeconds       prometheus.Histogram
	DialErrors        *prometheus.CounterVec // by reason: resolve, timeout, refused, other
	Panics            prometheus.Counter
	Rejected          prometheus.Counter // connections refused by a connection cap

	sent, received prometheus.Counter // Bytes' two series, resolved once
}

// maxRuleLabels bounds the rule label; later rules share "other".
const maxRuleLabels = 256

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "egress_http_proxy"
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Plain HTTP requests by decision and deciding rule."}, []string{"decision", "rule"}),
		Tunnels: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnels_total",
			Help: "CONNECT tunnels by decision and deciding rule."}, []string{"decision", "rule"}),
		ActiveConnections: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "active_connections",
			Help: "Client connections open."}),
		ActiveTunnels: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "active_tunnels",
			Help: "CONNECT tunnels open."}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bytes_total",
			Help: "Bytes relayed: sent is client to upstream, received is upstream to client."}, []string{"direction"}),
		DialSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "dial_duration_seconds",
			Help: "Time to connect upstream, resolution included.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}),
		DialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dial_errors_total",
			Help: "Upstream connections that failed, by reason."}, []string{"reason"}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "panics_total",
			Help: "Connections ended by a recovered panic."}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rejected_connections_total",
			Help: "Client connections closed at once because a connection cap was full."}),
	}
	m.sent, m.received = m.Bytes.WithLabelValues("sent"), m.Bytes.WithLabelValues("received")
	reg.MustRegister(m.Requests, m.Tunnels, m.ActiveConnections, m.ActiveTunnels, m.Bytes, m.DialSeconds, m.DialErrors, m.Panics, m.Rejected)
	return m
}

// decisionCounters are one CounterVec's counters resolved per rule ahead of time, so
// counting a request is one atomic add rather than a label lookup.
type decisionCounters struct {
	allow, deny []prometheus.Counter // index 0: no rule; i: rule i
}

func newDecisionCounters(vec *prometheus.CounterVec, rules int) decisionCounters {
	n := min(rules, maxRuleLabels) + 1
	d := decisionCounters{allow: make([]prometheus.Counter, n), deny: make([]prometheus.Counter, n)}
	for i := range n {
		label := "none"
		if i > 0 {
			label = strconv.Itoa(i)
		}
		d.allow[i] = vec.WithLabelValues("allow", label)
		d.deny[i] = vec.WithLabelValues("deny", label)
	}
	if rules > maxRuleLabels {
		d.allow = append(d.allow, vec.WithLabelValues("allow", "other"))
		d.deny = append(d.deny, vec.WithLabelValues("deny", "other"))
	}
	return d
}

// count records one decision by the rule at index rule (-1: none).
func (d decisionCounters) count(allow bool, rule int) {
	list := d.deny
	if allow {
		list = d.allow
	}
	list[min(rule+1, len(list)-1)].Inc()
}
