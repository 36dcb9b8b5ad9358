package profile

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// Sample is one observation of a function's usage.
//
// Usage holds rates and levels: [hal.CPU] in cores (CPU seconds per second
// over the interval the sample covers), [hal.Memory] in bytes (resident at
// Time), [hal.IO] in bytes per second, other resources as their device
// defines them. A resource absent from Usage was not measured (it is not
// taken as zero).
//
// Calls, Latency and StateBytes are evidence for criticality: they cover
// the interval since the previous sample of the same function from the
// same source; zero means none (or not measured).
type Sample struct {
	Function string
	Time     time.Time
	Usage    hal.Vector

	// Interval is the span the rates in Usage and the counts below cover;
	// zero means unknown. Counts are summed into the evidence buckets the
	// sample's Time falls in, so Interval is informational.
	Interval time.Duration
	// Calls is the number of units of work completed during Interval.
	Calls int64
	// Latency is the mean latency of those calls.
	Latency time.Duration
	// StateBytes is the number of bytes of state the function wrote during
	// Interval (what a snapshot would have to carry).
	StateBytes int64
}

// Collector takes one round of samples from some source: procfs, a cgroup,
// an in-process [Meter], or the host's own measurements. Collect must be
// safe to call from one goroutine at a time; rates are computed between
// consecutive calls, so the first call may return samples without CPU or
// I/O rates.
type Collector interface {
	Collect(ctx context.Context) ([]Sample, error)
}

// CollectorFunc adapts a function to a [Collector]: the in-memory
// collector tests, examples and hosts with their own measurements use.
type CollectorFunc func(ctx context.Context) ([]Sample, error)

// Collect calls f(ctx).
func (f CollectorFunc) Collect(ctx context.Context) ([]Sample, error) { return f(ctx) }

var _ Collector = CollectorFunc(nil)

// Profiler answers what each function will need during an update window
// and whether it is critical. [Analyzer] is the implementation most callers
// want; [Static] is an in-memory one for tests and examples.
type Profiler interface {
	// Forecast returns, for every function in functions, its demand during
	// the next window and its criticality verdict. It rejects functions
	// with an empty or duplicate name, an unknown dependency or a
	// dependency cycle, naming the function at fault.
	Forecast(ctx context.Context, window time.Duration, functions []Function) (Forecast, error)
}

// Forecast is a Profiler's answer for one window.
type Forecast struct {
	Window    time.Duration
	At        time.Time
	Functions []FunctionForecast // one per requested function, sorted by Function
}

// Lookup returns the forecast of the named function.
func (f Forecast) Lookup(function string) (FunctionForecast, bool) {
	for _, ff := range f.Functions {
		if ff.Function == function {
			return ff, true
		}
	}
	return FunctionForecast{}, false
}

// FunctionForecast is the forecast demand and criticality verdict of one
// function. P50 ≤ P95 ≤ P99 resource by resource. P50 and P99 are the
// demand that half and 99% of the window's points are expected to stay at
// or below. P95 is the reservation to hold for the window: once the
// history is long enough, the cheapest forecaster's prediction plus the
// margin that would have minimised over-reservation plus
// [Options.OverrunCost] per exceeded point, so it covers nearly every
// point where that is cheap (steady use) and leaves out rare tall bursts
// where the price allows. How often it is exceeded on public traces is in
// benchmarks/profile/SUMMARY.md.
type FunctionForecast struct {
	Function      string
	P50, P95, P99 hal.Vector
	Confidence    float64 // 0..1; 0 when there is no history
	Samples       int     // observations the forecast rests on
	Critical      bool
	Reasons       []string // in words a host engineer can check, e.g. `annotated critical by the host`, `critical because "routes" (critical) depends on it`
	// Basis says, per resource, what the quantiles rest on, e.g.
	// `cpu: level, trend and daily pattern from 8000 observations ...`.
	Basis []string
}
