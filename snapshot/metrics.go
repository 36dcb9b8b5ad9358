package snapshot

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus collectors an [Engine] updates, exposed as one
// collector by [Engine.Collector]. The library never registers them: the
// host does, with its registry.
type metrics struct {
	// Pause observes each cut's pause, in seconds.
	Pause prometheus.Histogram
	// Duration observes whole snapshots and restores, in seconds, by op
	// ("snapshot", "restore").
	Duration *prometheus.HistogramVec
	// Bytes counts raw state bytes written or restored, by op.
	Bytes *prometheus.CounterVec
	// Failures counts failed snapshots and restores, by op.
	Failures *prometheus.CounterVec
}

// newMetrics returns unregistered collectors named
// <namespace>_snapshot_<metric>.
func newMetrics(namespace string) *metrics {
	return &metrics{
		Pause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "snapshot", Name: "pause_seconds",
			Help:    "How long a snapshot cut paused the sources.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1µs .. ~4s
		}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "snapshot", Name: "duration_seconds",
			Help:    "How long whole snapshots and restores took.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 4, 10), // 1ms .. ~4min
		}, []string{"op"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "snapshot", Name: "bytes_total",
			Help: "Raw state bytes written by snapshots or handed to sources by restores.",
		}, []string{"op"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "snapshot", Name: "failures_total",
			Help: "Snapshots and restores that failed.",
		}, []string{"op"}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.Pause.Describe(ch)
	m.Duration.Describe(ch)
	m.Bytes.Describe(ch)
	m.Failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.Pause.Collect(ch)
	m.Duration.Collect(ch)
	m.Bytes.Collect(ch)
	m.Failures.Collect(ch)
}

// Collector returns the engine's metrics (updraft_snapshot_pause_seconds,
// _duration_seconds, _bytes_total and _failures_total) as one
// collector for the host to register.
func (e *Engine) Collector() prometheus.Collector { return e.metrics }

// observe records one operation; m may be nil.
func (m *metrics) observe(op string, start time.Time, rawBytes int64, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.Failures.WithLabelValues(op).Inc()
		return
	}
	m.Duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.Bytes.WithLabelValues(op).Add(float64(rawBytes))
}
