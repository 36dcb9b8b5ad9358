// Package profile is updraft's Resource Profile Analyzer: it learns what each
// function of the host application uses, forecasts what each will need
// during an update window, and says which functions are critical during
// that window, with reasons a host engineer can check.
//
// Evidence arrives as [Sample]s, either pushed with [Analyzer.Observe] or
// pulled from [Collector]s with [Analyzer.Sample]. The package ships
// collectors for the real system:
//
//   - [ProcCollector] reads per-process and per-thread CPU time, resident
//     memory and I/O bytes from procfs, and [SystemCollector] the machine's
//     CPU, memory and pressure (PSI);
//   - [CgroupCollector] reads a function's cgroup (v1 or v2): CPU usage,
//     memory current and peak, I/O, and per-cgroup PSI where the kernel
//     offers it; [CgroupOf] builds the target from a process's PID;
//   - [Meter] measures functions that are goroutines inside the host binary:
//     thread CPU time around each tracked unit of work, calls, latency and
//     bytes of state written.
//
// Every collector takes its filesystem root as a parameter, so the parsers
// are tested on fixtures under testdata/ and on the real system on top.
// [CollectorFunc] adapts a plain function (the in-memory collector). A
// process that exits, or a cgroup that is removed, between reads is
// skipped and counted; a malformed file is an error naming the file and
// line.
//
// The model works in the manner of Google's Autopilot recommender (Rzadca et
// al., EuroSys 2020): per function and resource, several forecasters run
// side by side — the recent level, the level with a damped trend and the
// daily pattern, and the peaks of recent windows (the last horizon, the
// last day, the same window on recent days, the last week) — and each is
// charged what it would have cost over the recent history: the
// over-reservation plus a price per observation it failed to cover. The
// cheapest answers. [Analyzer.Forecast] gives, per function and
// resource, the demand during the next window as p50/p95/p99 with a
// confidence; P95 is the reservation to hold: the cheapest forecaster's
// prediction plus the margin (learnt from how far observations landed
// from its predictions, in units of the function's mean) that minimised
// that cost. Prices are per resource ([Options.OverrunCost]): a memory
// overrun is an OOM kill under a hard limit, a CPU overrun a delay, so
// memory's default price is far higher; memory's P95 is also never below
// the highest use of the last day ([Options.PeakSpan], the windowed peak
// memory recommenders rest on), and it keeps at least [Options.Headroom]
// above both (TestPeakSpanFloorsTheForecast). [FunctionForecast.Basis] says
// which prediction, in words. Until enough errors are seen the forecast
// is the decaying distribution of what the function used; a function
// with fewer than [Options.MinSamples] observations gets a wide Student's
// t prediction interval and a low confidence, never a guess.
//
// The model's memory is fixed per function (under 64 KiB for a function
// with three resources, TestModelMemoryIsBoundedPerFunction) and each
// observation is O(1) work. How the forecasts compare with the
// Kubernetes VPA recommender and a moving-window rule on public traces,
// and where the model falls short of its aim, is in the repository's
// benchmarks/profile/SUMMARY.md, reproduced by examples/forecast.
//
// Criticality: the host's annotation ([Critical], [NonCritical]) wins;
// functions marked [Auto] are classified from evidence (activity that
// follows the critical entry points' request rate, state written, steady
// versus batch behaviour), and everything a critical function depends on is
// critical too.
//
// Sketch of use:
//
//	meter := profile.NewMeter(profile.MeterOptions{})
//	an, err := profile.New(profile.Options{Collectors: []profile.Collector{meter}})
//	if err != nil { ... }
//	// in the host's handlers:
//	done := meter.Track("routes")
//	handle(req)
//	done()
//	// periodically:
//	_ = an.Sample(ctx)
//	// before an update:
//	fc, err := an.Forecast(ctx, 10*time.Minute, []profile.Function{
//		{Name: "routes", Criticality: profile.Critical, EntryPoint: true},
//		{Name: "stats", Criticality: profile.Auto},
//	})
//
// An [Analyzer] is safe for concurrent use; [Analyzer.Observe] may run
// while [Analyzer.Forecast] does. [Analyzer.Collector] is its Prometheus
// collector for the caller to register. [Static] is the in-memory
// [Profiler] for tests and examples.
//
// The sub-package profile/trace replays public traces (Bitbrains,
// Alibaba) through the model, a re-implementation of the Kubernetes VPA
// recommender and a moving-window rule; see examples/forecast.
package profile
