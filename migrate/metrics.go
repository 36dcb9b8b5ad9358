package migrate

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Mover's Prometheus counters, by function. The library
// registers nothing itself: callers register [Mover.Collector].
type metrics struct {
	invocations, retries, failovers, replayed, checkpoints, overflow *prometheus.CounterVec
}

func newMetrics() *metrics {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "updraft", Subsystem: "migrate", Name: name, Help: help,
		}, []string{"function"})
	}
	return &metrics{
		invocations: c("invocations_total", "Invocations of moved functions answered through a lease."),
		retries:     c("retries_total", "Call attempts repeated because a target was unreachable."),
		failovers:   c("failovers_total", "Moves of a function off a failed target."),
		replayed:    c("replayed_total", "Invocations re-delivered from the buffer after a failover or at return."),
		checkpoints: c("checkpoints_total", "State checkpoints fetched home from targets."),
		overflow:    c("buffer_overflow_total", "Invocations refused because the function's buffer was full."),
	}
}

// Collector returns the Mover's Prometheus metrics as one collector
// (counters labelled by function: invocations, retries, failovers,
// replayed, checkpoints, buffer overflow), for the caller to register —
// the project's one metrics convention.
func (m *Mover) Collector() prometheus.Collector {
	x := m.metrics
	return collectors{x.invocations, x.retries, x.failovers, x.replayed, x.checkpoints, x.overflow}
}

// collectors is several collectors as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// routeMetrics are one function's counters.
type routeMetrics struct {
	invocations, retries, failovers, replayed, checkpoints, overflow prometheus.Counter
}

func (x *metrics) forFunction(fn string) routeMetrics {
	return routeMetrics{
		invocations: x.invocations.WithLabelValues(fn), retries: x.retries.WithLabelValues(fn),
		failovers: x.failovers.WithLabelValues(fn), replayed: x.replayed.WithLabelValues(fn),
		checkpoints: x.checkpoints.WithLabelValues(fn), overflow: x.overflow.WithLabelValues(fn),
	}
}
