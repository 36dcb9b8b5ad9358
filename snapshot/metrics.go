package snapshot

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors an [Engine] updates when
// [Options.Metrics] is set. The library never registers them: the host does,
// with prometheus.MustRegister(m.Collectors()...) or its own registry.
type Metrics struct {
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

// NewMetrics returns unregistered collectors named
// <namespace>_snapshot_<metric>. namespace may be empty.
func NewMetrics(namespace string) *Metrics {
	return &Metrics{
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

// Collectors returns every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Pause, m.Duration, m.Bytes, m.Failures}
}

// observe records one operation; m may be nil.
func (m *Metrics) observe(op string, start time.Time, rawBytes int64, err error) {
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
