package updraft

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Orchestrator's Prometheus collectors; the host registers
// them through [Orchestrator.Collector].
type metrics struct {
	updates *prometheus.CounterVec   // by outcome
	phases  *prometheus.HistogramVec // by phase and outcome
}

func newMetrics() *metrics {
	return &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "updraft_updates_total",
			Help: "Updates run by PrepareForUpdate, by outcome (committed, aborted, rolled back, rollback failed).",
		}, []string{"outcome"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "updraft_phase_duration_seconds",
			Help:    "Time each update phase and compensation took, by phase and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12), // 100µs .. ~7 min
		}, []string{"phase", "outcome"}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.updates.Describe(ch)
	m.phases.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.updates.Collect(ch)
	m.phases.Collect(ch)
}

// Collector returns the Orchestrator's Prometheus metrics (updates by
// outcome, phase durations) for the host to register; updraft registers
// nothing itself. The package collectors (degrade, migrate, profile,
// validate) are registered separately from their own packages.
func (o *Orchestrator) Collector() prometheus.Collector { return o.metrics }
