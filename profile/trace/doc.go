// Package trace reads public resource-usage traces and replays them through
// a forecaster, so forecasts are judged on what real machines did rather
// than on data made up for the purpose.
//
// Two layouts are read, gzip-compressed or plain (detected from the first
// bytes):
//
//   - Bitbrains GWA-T-12 (one file per VM, ';'+TAB separated, one header
//     row, epoch seconds): [ReadBitbrains];
//   - Alibaba cluster-trace-v2018 machine_usage.csv (no header, one row per
//     machine and instant): [ReadAlibaba], one [Series] per machine.
//
// Both are resampled to a fixed step ([Step], five minutes): rows are
// sorted, duplicate timestamps dropped, rows of a machine that is off (all
// usage zero) skipped, and points inside one step averaged. Broken lines
// are skipped and counted in [Stats] with the file and line of the first
// few, never a panic.
//
// [Replay] then forecasts each window from the history before it, with any
// [Forecaster]: [Model] wraps the profile package's Analyzer, [VPA] is the
// baseline recommender of the kind Kubernetes' Vertical Pod Autoscaler uses
// (decaying histogram, p90 target, +15% margin). The [Score] of each is its
// slack (reserved minus used, over used) and its violation rate (share of
// points where use exceeded the reservation).
//
//	s, stats, err := trace.ReadFile("../shared/traces/bitbrains-rnd-2013-7/1.csv.gz")
//	model, _ := trace.NewModel(trace.ModelOptions{})
//	score, err := trace.Replay(ctx, s[0], model, trace.ReplayOptions{})
package trace
