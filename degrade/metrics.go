package degrade

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names exported by [Controller.Collector].
const (
	MetricMode             = "updraft_degrade_mode"
	MetricRequests         = "updraft_degrade_requests_total"
	MetricConcurrencyLimit = "updraft_degrade_concurrency_limit"
	MetricInFlight         = "updraft_degrade_in_flight"
	MetricPressureFactor   = "updraft_degrade_pressure_factor"
	MetricSubscriberPanics = "updraft_degrade_subscriber_panics_total"
	MetricGuardFactor      = "updraft_degrade_guard_factor"
	MetricGuardBackoffs    = "updraft_degrade_guard_backoffs_total"
	MetricGuardCriticalP90 = "updraft_degrade_guard_critical_p90_seconds"
	MetricGuardBaseline    = "updraft_degrade_guard_baseline_seconds"
	MetricGuardSchedP99    = "updraft_degrade_guard_sched_p99_seconds"
)

var _ prometheus.Collector = (*collector)(nil)

// collector reads the controller's atomic counters at scrape time, so the
// hot path pays nothing for metrics beyond the counters it keeps anyway.
type collector struct {
	c                                     *Controller
	mode, requests, limit, inflight, pres *prometheus.Desc
	panics                                *prometheus.Desc
	guardFactor, guardBackoffs, guardP90  *prometheus.Desc
	guardBaseline, guardSched             *prometheus.Desc
}

// Collector returns a Prometheus collector for the controller, for the host
// to register (prometheus.MustRegister(ctl.Collector())). Per function
// known to the controller (declared in Options.Functions or ever Set) it
// exports:
//
//   - updraft_degrade_mode{function, mode}: 1 for the mode in force, 0 for
//     the others;
//   - updraft_degrade_requests_total{function, outcome}: requests admitted,
//     throttled, disabled (rejected while disabled) and shed;
//   - updraft_degrade_concurrency_limit{function}: the limit in force, 0 for none;
//   - updraft_degrade_in_flight{function}: admitted requests not yet released;
//
// and updraft_degrade_pressure_factor, the share of adaptive limits kept
// under pressure, and updraft_degrade_subscriber_panics_total, subscriber
// calls that panicked (recovered; see [Controller.Subscribe]), and the
// critical guard's updraft_degrade_guard_factor,
// updraft_degrade_guard_backoffs_total and the latencies of its last step
// (updraft_degrade_guard_critical_p90_seconds, _baseline_seconds,
// _sched_p99_seconds); see [GuardOptions]. Functions never declared nor Set are not counted. A
// request racing with a mode change may be missed by the request counters
// (they stay monotonic).
func (c *Controller) Collector() prometheus.Collector {
	return &collector{
		c:        c,
		mode:     prometheus.NewDesc(MetricMode, "1 for the function's current degradation mode, 0 for the others.", []string{"function", "mode"}, nil),
		requests: prometheus.NewDesc(MetricRequests, "Requests seen by the degradation controller, by outcome (admitted, throttled, disabled, shed).", []string{"function", "outcome"}, nil),
		limit:    prometheus.NewDesc(MetricConcurrencyLimit, "Concurrency limit in force for the function (0 = none).", []string{"function"}, nil),
		inflight: prometheus.NewDesc(MetricInFlight, "Admitted requests of the function not yet released.", []string{"function"}, nil),
		pres:     prometheus.NewDesc(MetricPressureFactor, "Share of adaptive concurrency limits kept under system pressure (1 = no pressure).", nil, nil),
		panics:   prometheus.NewDesc(MetricSubscriberPanics, "Subscriber calls that panicked; the panics were recovered and logged.", nil, nil),

		guardFactor:   prometheus.NewDesc(MetricGuardFactor, "Share of adaptive concurrency limits kept by the critical guard (1 = critical path within bounds).", nil, nil),
		guardBackoffs: prometheus.NewDesc(MetricGuardBackoffs, "Critical guard steps that lowered the adaptive limits.", nil, nil),
		guardP90:      prometheus.NewDesc(MetricGuardCriticalP90, "Critical latency p90 seen at the guard's last step (0 = too few samples).", nil, nil),
		guardBaseline: prometheus.NewDesc(MetricGuardBaseline, "Critical latency baseline the guard compares against.", nil, nil),
		guardSched:    prometheus.NewDesc(MetricGuardSchedP99, "Go scheduler latency p99 seen at the guard's last step.", nil, nil),
	}
}

// Describe sends the descriptors of every metric.
func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.mode, m.requests, m.limit, m.inflight, m.pres, m.panics, m.guardFactor, m.guardBackoffs, m.guardP90, m.guardBaseline, m.guardSched} {
		ch <- d
	}
}

// Collect reads the current values. It holds the controller's mutex while
// reading, so a window's tallies are never counted both in the window and
// in the function's past (mode changes fold one into the other under the
// same mutex); requests are not slowed, they take no lock.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	var out []prometheus.Metric
	m.c.mu.Lock()
	now := m.c.now().UnixNano()
	for name, f := range *m.c.fns.Load() {
		mode, limit := Normal, int64(0)
		var total counters
		f.past.addTo(&total)
		total.admitted.Store(f.admissionsLocked())
		if w := f.win.Load(); w != nil {
			w.counts.addTo(&total)
			if now < w.untilNano {
				mode, limit = w.policy.Mode, w.concurrencyLimit()
			}
		}
		for _, each := range []Mode{Normal, Throttle, Disable, Shed} {
			v := 0.0
			if each == mode {
				v = 1
			}
			out = append(out, prometheus.MustNewConstMetric(m.mode, prometheus.GaugeValue, v, name, each.String()))
		}
		for outcome, n := range map[string]uint64{
			"admitted":  total.admitted.Load(),
			"throttled": total.throttled.Load(),
			"disabled":  total.disabled.Load(),
			"shed":      total.shed.Load(),
		} {
			out = append(out, prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(n), name, outcome))
		}
		out = append(out,
			prometheus.MustNewConstMetric(m.limit, prometheus.GaugeValue, float64(limit), name),
			prometheus.MustNewConstMetric(m.inflight, prometheus.GaugeValue, float64(f.inFlight()), name))
	}
	m.c.mu.Unlock()
	out = append(out, prometheus.MustNewConstMetric(m.pres, prometheus.GaugeValue, m.c.factor.load()),
		prometheus.MustNewConstMetric(m.panics, prometheus.CounterValue, float64(m.c.subscriberPanics.Load())))
	g := m.c.guard
	g.mu.Lock()
	st, backoffs := g.state, g.backoffs
	g.mu.Unlock()
	out = append(out,
		prometheus.MustNewConstMetric(m.guardFactor, prometheus.GaugeValue, st.Factor),
		prometheus.MustNewConstMetric(m.guardBackoffs, prometheus.CounterValue, float64(backoffs)),
		prometheus.MustNewConstMetric(m.guardP90, prometheus.GaugeValue, st.CriticalP90.Seconds()),
		prometheus.MustNewConstMetric(m.guardBaseline, prometheus.GaugeValue, st.Baseline.Seconds()),
		prometheus.MustNewConstMetric(m.guardSched, prometheus.GaugeValue, st.SchedP99.Seconds()))
	for _, metric := range out {
		ch <- metric
	}
}
