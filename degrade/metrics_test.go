package degrade

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Functions: []string{"checkout", "search", "upload"}})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(ctl.Collector()); err != nil {
		t.Fatal(err)
	}
	must(t, ctl.Set("search", Policy{Mode: Throttle, MaxConcurrent: 1}, "update", clk.Now().Add(time.Hour)))
	must(t, ctl.Set("upload", Policy{Mode: Disable}, "update", clk.Now().Add(time.Hour)))
	release, err := ctl.Acquire("search")
	must(t, err)
	_, _ = ctl.Acquire("search") // throttled
	_, _ = ctl.Acquire("upload") // disabled
	_, _ = ctl.Acquire("upload") // disabled
	r2, _ := ctl.Acquire("checkout")
	r2()
	_, _ = ctl.Acquire("unknown") // not counted

	want := `
# HELP updraft_degrade_concurrency_limit Concurrency limit in force for the function (0 = none).
# TYPE updraft_degrade_concurrency_limit gauge
updraft_degrade_concurrency_limit{function="checkout"} 0
updraft_degrade_concurrency_limit{function="search"} 1
updraft_degrade_concurrency_limit{function="upload"} 0
# HELP updraft_degrade_in_flight Admitted requests of the function not yet released.
# TYPE updraft_degrade_in_flight gauge
updraft_degrade_in_flight{function="checkout"} 0
updraft_degrade_in_flight{function="search"} 1
updraft_degrade_in_flight{function="upload"} 0
# HELP updraft_degrade_requests_total Requests seen by the degradation controller, by outcome (admitted, throttled, disabled, shed).
# TYPE updraft_degrade_requests_total counter
updraft_degrade_requests_total{function="checkout",outcome="admitted"} 1
updraft_degrade_requests_total{function="checkout",outcome="disabled"} 0
updraft_degrade_requests_total{function="checkout",outcome="shed"} 0
updraft_degrade_requests_total{function="checkout",outcome="throttled"} 0
updraft_degrade_requests_total{function="search",outcome="admitted"} 1
updraft_degrade_requests_total{function="search",outcome="disabled"} 0
updraft_degrade_requests_total{function="search",outcome="shed"} 0
updraft_degrade_requests_total{function="search",outcome="throttled"} 1
updraft_degrade_requests_total{function="upload",outcome="admitted"} 0
updraft_degrade_requests_total{function="upload",outcome="disabled"} 2
updraft_degrade_requests_total{function="upload",outcome="shed"} 0
updraft_degrade_requests_total{function="upload",outcome="throttled"} 0
`
	compareMetrics(t, reg, want, MetricConcurrencyLimit, MetricInFlight, MetricRequests)
	release()
	mode := `
# HELP updraft_degrade_mode 1 for the function's current degradation mode, 0 for the others.
# TYPE updraft_degrade_mode gauge
updraft_degrade_mode{function="checkout",mode="disable"} 0
updraft_degrade_mode{function="checkout",mode="normal"} 1
updraft_degrade_mode{function="checkout",mode="shed"} 0
updraft_degrade_mode{function="checkout",mode="throttle"} 0
updraft_degrade_mode{function="search",mode="disable"} 0
updraft_degrade_mode{function="search",mode="normal"} 1
updraft_degrade_mode{function="search",mode="shed"} 0
updraft_degrade_mode{function="search",mode="throttle"} 0
updraft_degrade_mode{function="upload",mode="disable"} 1
updraft_degrade_mode{function="upload",mode="normal"} 0
updraft_degrade_mode{function="upload",mode="shed"} 0
updraft_degrade_mode{function="upload",mode="throttle"} 0
# HELP updraft_degrade_pressure_factor Share of adaptive concurrency limits kept under system pressure (1 = no pressure).
# TYPE updraft_degrade_pressure_factor gauge
updraft_degrade_pressure_factor 1
`
	must(t, ctl.Clear("search"))
	compareMetrics(t, reg, mode, MetricMode, MetricPressureFactor)
}

// compareMetrics gathers reg and compares the named families, as
// `name{label="v",...} value` lines, with the sample lines of want.
func compareMetrics(t *testing.T, reg *prometheus.Registry, want string, names ...string) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range families {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			line := mf.GetName()
			if len(labels) > 0 {
				line += "{" + strings.Join(labels, ",") + "}"
			}
			got = append(got, fmt.Sprintf("%s %g", line, v))
		}
	}
	var wantLines []string
	for _, line := range strings.Split(want, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			wantLines = append(wantLines, line)
		}
	}
	slices.Sort(got)
	slices.Sort(wantLines)
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Fatalf("metrics (-want +got):\n%s", diff)
	}
}
