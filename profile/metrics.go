package profile

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the one Prometheus collector of a: samples observed
// and dropped, and functions tracked. The caller registers it (the library
// never registers anything itself):
//
//	reg.MustRegister(an.Collector())
func (a *Analyzer) Collector() prometheus.Collector { return analyzerMetrics{a} }

var (
	descObserved = prometheus.NewDesc("updraft_profile_samples_observed_total",
		"Samples the profile analyzer has recorded.", nil, nil)
	descDropped = prometheus.NewDesc("updraft_profile_samples_dropped_total",
		"Samples the profile analyzer refused (invalid, or over MaxFunctions).", nil, nil)
	descFunctions = prometheus.NewDesc("updraft_profile_functions",
		"Functions the profile analyzer keeps a model for.", nil, nil)
)

type analyzerMetrics struct{ a *Analyzer }

func (m analyzerMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descObserved
	ch <- descDropped
	ch <- descFunctions
}

func (m analyzerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.a.mu.Lock()
	observed, dropped, functions := m.a.observed, m.a.dropped, len(m.a.funcs)
	m.a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descObserved, prometheus.CounterValue, float64(observed))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(descFunctions, prometheus.GaugeValue, float64(functions))
}
