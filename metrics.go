package updraft

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Orchestrator's Prometheus collectors; the host registers
// them through [Orchestrator.Collector].
type metrics struct {
	updates *prometheus.CounterVec   // by outcome
	resumes *prometheus.CounterVec   // by outcome
	phases  *prometheus.HistogramVec // by phase and outcome
	// parts are the collectors of the collaborators New built itself.
	parts []prometheus.Collector
}

func newMetrics() *metrics {
	return &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "updraft_updates_total",
			Help: "Updates run by PrepareForUpdate, by outcome (committed, aborted, rolled back, rollback failed).",
		}, []string{"outcome"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "updraft_resumes_total",
			Help: "Runs of Resume, by outcome (committed, rolled back, rollback failed, nothing to resume, or the error's kind).",
		}, []string{"outcome"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "updraft_phase_duration_seconds",
			Help:    "Time each update phase and compensation took (Resume's included), by phase and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12), // 100µs .. ~7 min
		}, []string{"phase", "outcome"}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.updates.Describe(ch)
	m.resumes.Describe(ch)
	m.phases.Describe(ch)
	for _, c := range m.parts {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.updates.Collect(ch)
	m.resumes.Collect(ch)
	m.phases.Collect(ch)
	for _, c := range m.parts {
		c.Collect(ch)
	}
}

// Collector returns the Orchestrator's Prometheus metrics (updates and
// resumes by outcome, phase durations) together with those of the
// collaborators New built itself (the default degrade controller, snapshot
// engine and validation suite), for the host to register; updraft registers nothing itself.
// Collaborators the host passed in Options expose their own Collector.
func (o *Orchestrator) Collector() prometheus.Collector { return o.metrics }
