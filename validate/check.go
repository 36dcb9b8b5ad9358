package validate

import (
	"context"
	"time"
)

// Check is one piece of evidence that the update works: a probe, a smoke
// test, a comparison of metrics against the pre-update baseline.
//
// Run reports its outcome in a [Result]; it does not return an error
// because a check that cannot run (unreachable address, no samples) is
// itself evidence, reported as Fail or Marginal with Result.Err set. Run
// must honour ctx: the [Suite] cancels it when the per-check timeout
// expires and, if Run does not return, abandons it and reports a timeout.
//
// Implementations must be safe to call from a goroutine other than the one
// that built them; the Suite never runs the same check concurrently with
// itself, but it may call Run again to retry.
type Check interface {
	// Name identifies the check in reports; it is unique within a Suite.
	Name() string
	// Run gathers the evidence and judges it.
	Run(ctx context.Context) Result
}

// BaselineRecorder is implemented by checks that compare with the
// pre-update state (for example [MetricComparison]). The Orchestrator calls
// RecordBaseline, through [Suite.RecordBaseline], before the update is
// applied; Run then compares what it measures with what was recorded.
type BaselineRecorder interface {
	RecordBaseline(ctx context.Context) error
}

// Retrier is an optional interface for checks that know whether running
// again could change their outcome. A [Suite] with Options.Retries > 0
// retries a check whose attempt did not pass; a check implementing Retrier
// is retried only when ShouldRetry returns true. A statistical comparison,
// for instance, is not retried for a verdict drawn from enough samples, but
// is retried when its sample source failed.
type Retrier interface {
	ShouldRetry(r Result) bool
}

// Result is the outcome of one check.
type Result struct {
	// Check is the check's name.
	Check string
	// Verdict is the check's judgement.
	Verdict Verdict
	// Score is the confidence that the update works, from 0 (certain
	// failure) to 1 (certain pass). The Suite reads a Pass with Score 0 as
	// 1 (the check left the zero value) and turns a NaN or out-of-range
	// score, an undefined verdict, or a Pass with an error into a Fail.
	Score float64
	// Evidence holds the numbers behind the verdict, in words, one line
	// each ("p99 latency 4.1ms → 8.3ms (+102%, bound +20%)").
	Evidence []string
	// Err is why the check failed or could not judge; nil on Pass.
	Err error
	// Attempts is how many times the Suite ran the check (1 without retries).
	Attempts int
	// Duration is the time spent on the check, all attempts included.
	Duration time.Duration
}

// Validator judges whether an update works.
type Validator interface {
	// Validate runs every check and returns the report. The error is
	// non-nil only when validation could not run: no checks were configured
	// and the host did not allow it ([ErrNoChecks]), or ctx ended. A failing
	// check gives a report with Verdict Fail and a nil error.
	Validate(ctx context.Context) (Report, error)
}
