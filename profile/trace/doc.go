// Package trace reads public resource-usage traces and replays them through
// forecasters, so forecasts are judged on what real machines did rather
// than on data made up for the purpose.
//
// Two layouts are read, gzip-compressed or plain (detected from the first
// bytes):
//
//   - Bitbrains GWA-T-12 (one file per VM, ';'+TAB separated, one header
//     row, epoch seconds): [ReadBitbrains], CPU in cores and memory in
//     bytes;
//   - Alibaba cluster-trace-v2018 machine_usage.csv (no header, one row per
//     machine and instant): [ReadAlibaba], one [Series] per machine, its
//     percentages turned into cores and bytes of an assumed machine size
//     ([AlibabaCores], [AlibabaMemory]).
//
// Both are resampled to a fixed step ([Step], five minutes): rows are
// sorted, duplicate timestamps dropped, rows of a machine that is off (all
// usage zero) skipped, and points inside one step averaged. Broken lines
// are skipped and counted in [Stats] with the file and line of the first
// few, never a panic.
//
// [Replay] then forecasts each window from the history before it — the
// forecaster has observed every earlier point and no later one — with any
// [Forecaster]:
//
//   - [Model] wraps the profile package's Analyzer;
//   - [VPA] re-implements the Kubernetes Vertical Pod Autoscaler
//     recommender from kubernetes/autoscaler's
//     vertical-pod-autoscaler/pkg/recommender (util/histogram.go,
//     util/decaying_histogram.go, util/histogram_options.go,
//     model/aggregate_container_state.go, model/container.go,
//     model/aggregations_config.go, logic/recommender.go,
//     logic/estimator.go): decaying histograms with a 24-hour half-life,
//     every CPU sample and one memory peak per 24-hour interval, target at
//     the 90th percentile (the end of its bucket) plus 15%, pod minimums
//     of 25 millicores and 250 MiB; [DefaultVPAConfig];
//   - [WindowPercentile] is the rule "p95 of the last 2 hours × 1.2".
//
// A [Score] per resource holds the gross slack (over-reservation over use:
// an under-reservation never offsets it), the violation rate (share of
// points where use exceeded the reservation) and the size of the
// overruns. [Evaluate] replays many series through many methods;
// [Evaluation.Spread] summarises the per-series spread and
// [Evaluation.Aim] checks the model's aim against the VPA recommender per
// resource. [KnownMeanCurve] is the aim's anchor: the trade-off of a
// reservation told each window's mean use in advance, with each series'
// margin chosen in hindsight; [Anchors] sets it beside each aim.
// examples/forecast prints all of it, and can sweep each method's margin
// or cost.
//
//	files, err := trace.FindFiles("../shared/traces/bitbrains-rnd-2013-7")
//	series, stats, err := trace.ReadFiles(files)
//	methods := trace.StandardMethods(trace.ModelOptions{}, trace.DefaultVPAConfig(), trace.DefaultWindowConfig())
//	ev, err := trace.Evaluate(ctx, series, methods, trace.ReplayOptions{})
//	for _, a := range ev.Aim(0, 1) { fmt.Println(a) }
//
// The figures are in the repository's benchmarks/profile/SUMMARY.md; no
// trace data is kept in the repository (the traces' README asks so): the
// tests read them from $UPDRAFT_TRACES or ../shared/traces beside the
// module root.
package trace
