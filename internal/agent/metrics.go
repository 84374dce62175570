package agent

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	active      prometheus.Gauge
	transitions *prometheus.CounterVec
	takeover    prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) metrics {
	m := metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "egress_router_agent_active",
			Help: "1 while this pod holds the reserved addresses, 0 on a standby."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egress_router_agent_transitions_total",
			Help: "Role changes, by the role taken: active or standby."}, []string{"to"}),
		takeover: prometheus.NewGauge(prometheus.GaugeOpts{Name: "egress_router_agent_last_takeover_seconds",
			Help: "From winning the Lease to holding and announcing the addresses, at the last takeover."}),
	}
	r.MustRegister(m.active, m.transitions, m.takeover)
	return m
}
