// Package validate decides whether an update works — as well as before, not
// just "responds" — so that the Orchestrator can restore full service or
// roll back.
//
// A [Check] is one piece of evidence; a [Suite] (the package's [Validator])
// runs its checks concurrently, each attempt bounded by a timeout, retries
// flaky ones a bounded number of times, and returns a [Report]: the worst
// [Verdict] (Pass, Marginal, Fail), the lowest score, and every check's
// [Result] with the numbers behind it. Several failures are all reported:
// [Report.Err] collects them with go-multierror.
//
// Built-in checks:
//
//   - [Func]: a Go function of the host's; nil error means pass.
//   - [NewHTTPProbe]: status, body match and a latency bound.
//   - [NewTCPProbe]: a TCP connect.
//   - [NewSmoke]: a list of named steps run in order.
//   - [NewMetricComparison]: post-update samples (latencies, throughput)
//     against the baseline recorded before the update, with a Mann-Whitney
//     U test, a relative tolerance and quantile growth bounds.
//   - [NewRateComparison]: an event rate (errors per request) against the
//     baseline, with Fisher's exact test and a tolerance.
//
// Checks that compare with the pre-update state implement
// [BaselineRecorder]; [Suite.RecordBaseline] calls them all before the
// update is applied. Optional interfaces, checked with a type assertion:
//
//   - [BaselineRecorder]: the check records a baseline before the update.
//   - [Retrier]: the check says whether another attempt could change its
//     outcome.
//   - [Timeouter]: the check has its own per-attempt timeout ([WithTimeout]).
//
// Logs go to Options.Logger (nil discards them); the caller registers
// [Suite.Collector] for Prometheus metrics.
//
// Bad input never passes by default: a Suite without checks refuses to
// validate ([ErrNoChecks]) unless Options.AllowNoChecks is set; too few
// samples give Marginal with the reason ([ErrTooFewSamples]); an
// unreachable probe fails.
//
// Sketch:
//
//	latency := validate.NewRecorder(0) // the host calls latency.Observe(ms) per request
//	cmp, err := validate.NewMetricComparison("latency", latency, validate.MetricOptions{})
//	suite, err := validate.New([]validate.Check{
//		validate.Func("route lookup", func(ctx context.Context) error { return lookup(ctx, "10.0.0.1") }),
//		cmp,
//	}, validate.Options{Timeout: 5 * time.Second, Retries: 2})
//	err = suite.RecordBaseline(ctx) // before the update
//	// ... the update ...
//	report, err := suite.Validate(ctx)
//	if err == nil && report.Verdict == validate.Fail { /* roll back */ }
package validate
