package validate

import "github.com/prometheus/client_golang/prometheus"

// metrics are the collectors behind [Suite.Collector]; safe for
// concurrent use.
type metrics struct {
	validations *prometheus.CounterVec
	checks      *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
}

var _ prometheus.Collector = (*metrics)(nil)

// newMetrics returns unregistered collectors.
func newMetrics() *metrics {
	return &metrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "updraft", Subsystem: "validate", Name: "validations_total",
			Help: "Validations run, by verdict (pass, marginal, fail).",
		}, []string{"verdict"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "updraft", Subsystem: "validate", Name: "checks_total",
			Help: "Check outcomes, by check and verdict.",
		}, []string{"check", "verdict"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "updraft", Subsystem: "validate", Name: "check_attempts_total",
			Help: "Attempts per check, retries included.",
		}, []string{"check"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "updraft", Subsystem: "validate", Name: "check_duration_seconds",
			Help:    "Time spent on each check, all attempts included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms … ~4.4 min
		}, []string{"check"}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.validations.Describe(ch)
	m.checks.Describe(ch)
	m.attempts.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.validations.Collect(ch)
	m.checks.Collect(ch)
	m.attempts.Collect(ch)
	m.duration.Collect(ch)
}

// observeCheck records one check's result; m may be nil.
func (m *metrics) observeCheck(r Result) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(r.Check, r.Verdict.String()).Inc()
	m.attempts.WithLabelValues(r.Check).Add(float64(r.Attempts))
	m.duration.WithLabelValues(r.Check).Observe(r.Duration.Seconds())
}

// observeReport records one validation's verdict; m may be nil.
func (m *metrics) observeReport(r Report) {
	if m == nil {
		return
	}
	m.validations.WithLabelValues(r.Verdict.String()).Inc()
}
