package validate

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Defaults used for zero fields of [Options].
const (
	// DefaultTimeout bounds one attempt of one check.
	DefaultTimeout = 10 * time.Second
	// DefaultRetryDelay is the wait between two attempts of a check.
	DefaultRetryDelay = 250 * time.Millisecond
	// DefaultGrace is how long a check may take to return after its
	// attempt was cancelled before the Suite abandons it.
	DefaultGrace = time.Second
)

// Options configure a [Suite]. The zero value is usable: checks run all at
// once, each attempt bounded by [DefaultTimeout], no retries, the system
// clock, and logs discarded.
type Options struct {
	// AllowNoChecks lets a Suite with no checks validate an update (Pass,
	// score 1). Without it, Validate returns [ErrNoChecks]: an update is
	// never called validated without evidence unless the host opts in.
	AllowNoChecks bool
	// Timeout bounds each attempt of each check; 0 means DefaultTimeout.
	// A check implementing [Timeouter] (see [WithTimeout]) sets its own.
	Timeout time.Duration
	// Retries is how many more times a check that did not pass is run
	// (bounded retries for flaky probes); 0 means none. See [Retrier].
	Retries int
	// RetryDelay is the wait between attempts; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// Grace is how long a cancelled check may take to return before the
	// Suite abandons it (reporting Fail) and leaves its goroutine to finish
	// on its own; an abandoned check is not retried, but a later Validate
	// runs it again, possibly beside the abandoned Run. 0 means DefaultGrace.
	Grace time.Duration
	// BaselineTimeout bounds each check's RecordBaseline; 0 means only
	// the caller's ctx bounds it (recording may sample for a while).
	BaselineTimeout time.Duration
	// Concurrency is how many checks run at once; 0 means all of them.
	Concurrency int
	// Clock is the time source for durations; nil means time.Now.
	// Timeouts, grace periods and retry delays are timers of package time
	// (tests fake both with testing/synctest).
	Clock func() time.Time
	// Logger receives a record per attempt and per verdict; nil discards.
	Logger *slog.Logger
}

// withDefaults fills zero fields and rejects bad ones.
func (o Options) withDefaults() (Options, error) {
	var errs *multierror.Error
	for _, d := range []struct {
		field string
		value time.Duration
	}{{"Timeout", o.Timeout}, {"RetryDelay", o.RetryDelay}, {"Grace", o.Grace}, {"BaselineTimeout", o.BaselineTimeout}} {
		if d.value < 0 {
			errs = multierror.Append(errs, fmt.Errorf("validate: Options.%s is negative (%s)", d.field, d.value))
		}
	}
	if o.Retries < 0 {
		errs = multierror.Append(errs, fmt.Errorf("validate: Options.Retries is negative (%d)", o.Retries))
	}
	if o.Concurrency < 0 {
		errs = multierror.Append(errs, fmt.Errorf("validate: Options.Concurrency is negative (%d)", o.Concurrency))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return o, err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Suite runs a fixed set of checks concurrently, each with a timeout and
// bounded retries, and summarises them in a [Report]. Build one with [New].
//
// A Suite is safe for concurrent use, though validating the same update
// twice at once is rarely what a caller means. Most callers want
// [Suite.RecordBaseline] before the update and [Suite.Validate] after it.
type Suite struct {
	checks  []Check // fixed at New; read-only afterwards
	opts    Options
	metrics *metrics // safe for concurrent use
}

var (
	_ Validator        = (*Suite)(nil)
	_ BaselineRecorder = (*Suite)(nil)
)

// New returns a Suite over checks, run in the given order for reporting.
// It refuses nil checks, empty and duplicate names ([ErrDuplicateCheck]),
// and bad options, naming the culprit. An empty list is accepted here;
// Validate then refuses to run unless opts.AllowNoChecks is set.
func New(checks []Check, opts Options) (*Suite, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("validate: New: %w", err)
	}
	seen := make(map[string]int, len(checks))
	var errs *multierror.Error
	for i, c := range checks {
		if c == nil {
			errs = multierror.Append(errs, fmt.Errorf("validate: New: check %d is nil", i))
			continue
		}
		name := c.Name()
		if name == "" {
			errs = multierror.Append(errs, fmt.Errorf("validate: New: check %d (%T) has an empty name", i, c))
			continue
		}
		if j, dup := seen[name]; dup {
			errs = multierror.Append(errs, fmt.Errorf("%w: %q is check %d and check %d", ErrDuplicateCheck, name, j, i))
			continue
		}
		seen[name] = i
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, err
	}
	return &Suite{checks: append([]Check(nil), checks...), opts: o, metrics: newMetrics()}, nil
}

// Collector returns the Suite's Prometheus metrics for the caller to
// register (the library registers nothing itself):
//
//	updraft_validate_validations_total{verdict}      validations by verdict
//	updraft_validate_checks_total{check,verdict}     check outcomes
//	updraft_validate_check_attempts_total{check}     attempts, retries included
//	updraft_validate_check_duration_seconds{check}   time per check, all attempts
//
// Each Suite has its own collector; two Suites registered with one registry
// conflict, as two of any collector with the same names do.
func (s *Suite) Collector() prometheus.Collector { return s.metrics }

// Checks returns the names of the suite's checks, in registration order.
func (s *Suite) Checks() []string {
	names := make([]string, len(s.checks))
	for i, c := range s.checks {
		names[i] = c.Name()
	}
	return names
}

// RecordBaseline calls RecordBaseline on every check that implements
// [BaselineRecorder], concurrently, and returns all their failures
// collected (each naming its check). Call it before the update is applied.
func (s *Suite) RecordBaseline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("validate: record baseline: %w", err)
	}
	errs := make([]error, len(s.checks))
	s.forEach(func(i int, c Check) {
		rec, ok := c.(BaselineRecorder)
		if !ok {
			return
		}
		bctx, cancel := ctx, context.CancelFunc(func() {})
		if s.opts.BaselineTimeout > 0 {
			bctx, cancel = context.WithTimeout(ctx, s.opts.BaselineTimeout)
		}
		defer cancel()
		if err := safeRecord(bctx, rec); err != nil {
			errs[i] = fmt.Errorf("validate: check %q: record baseline: %w", c.Name(), err)
			s.opts.Logger.WarnContext(ctx, "validate: baseline not recorded", "check", c.Name(), "err", err)
			return
		}
		s.opts.Logger.DebugContext(ctx, "validate: baseline recorded", "check", c.Name())
	})
	var all *multierror.Error
	for _, err := range errs {
		if err != nil {
			all = multierror.Append(all, err)
		}
	}
	return all.ErrorOrNil()
}

// safeRecord calls rec.RecordBaseline, turning a panic into an error.
func safeRecord(ctx context.Context, rec BaselineRecorder) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panicked: %v", p)
		}
	}()
	return rec.RecordBaseline(ctx)
}

// Validate runs every check, concurrently up to Options.Concurrency, and
// returns a report with every check's result in registration order. A
// failing check gives Verdict Fail and a nil error; the error is non-nil
// only for [ErrNoChecks] or when ctx ends, in which case the report still
// lists what finished and the checks cut short as Fail.
func (s *Suite) Validate(ctx context.Context) (Report, error) {
	if len(s.checks) == 0 && !s.opts.AllowNoChecks {
		return Report{Verdict: Fail}, ErrNoChecks
	}
	if err := ctx.Err(); err != nil {
		return Report{Verdict: Fail}, fmt.Errorf("validate: %w", err)
	}
	results := make([]Result, len(s.checks))
	s.forEach(func(i int, c Check) { results[i] = s.run(ctx, c) })
	report := newReport(results)
	s.metrics.observeReport(report)
	s.opts.Logger.InfoContext(ctx, "validate: verdict", "verdict", report.Verdict.String(),
		"score", report.Score, "checks", len(results), "failed", len(report.Failed()))
	if err := ctx.Err(); err != nil {
		return report, fmt.Errorf("validate: cut short: %w", err)
	}
	return report, nil
}

// forEach calls f for every check in its own goroutine, at most
// Options.Concurrency at a time, and returns when all calls have returned.
func (s *Suite) forEach(f func(i int, c Check)) {
	limit := s.opts.Concurrency
	if limit == 0 || limit > len(s.checks) {
		limit = len(s.checks)
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i, c)
		})
	}
	wg.Wait()
}

// run runs c until it passes, its retries are spent, the check declines a
// retry, or ctx ends.
func (s *Suite) run(ctx context.Context, c Check) Result {
	start := s.opts.Clock()
	name := c.Name()
	if err := ctx.Err(); err != nil { // cut short before its turn came
		return Result{Check: name, Verdict: Fail, Err: fmt.Errorf("validate: check %q not run: %w", name, err)}
	}
	var res Result
	attempts := 0
	for {
		attempts++
		var abandoned bool
		res, abandoned = s.attempt(ctx, c)
		s.opts.Logger.DebugContext(ctx, "validate: attempt", "check", name, "attempt", attempts,
			"verdict", res.Verdict.String(), "err", res.Err)
		if res.Verdict == Pass || abandoned || attempts > s.opts.Retries || ctx.Err() != nil {
			break
		}
		if r, ok := c.(Retrier); ok && !r.ShouldRetry(res) {
			break
		}
		if s.sleep(ctx, s.opts.RetryDelay) != nil {
			break
		}
	}
	res.Attempts = attempts
	res.Duration = s.opts.Clock().Sub(start)
	s.metrics.observeCheck(res)
	if res.Verdict != Pass {
		s.opts.Logger.WarnContext(ctx, "validate: check did not pass", "check", name,
			"verdict", res.Verdict.String(), "attempts", attempts, "err", res.Err)
	}
	return res
}

// attempt runs c once under the per-check timeout. abandoned reports that
// Run did not return within the grace period after cancellation.
func (s *Suite) attempt(ctx context.Context, c Check) (res Result, abandoned bool) {
	name := c.Name()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	limit := s.opts.Timeout
	if t, ok := c.(Timeouter); ok && t.Timeout() > 0 {
		limit = t.Timeout()
	}
	timeout := fmt.Errorf("%w after %s", ErrTimeout, limit)
	stop := time.AfterFunc(limit, func() { cancel(timeout) }).Stop
	defer stop()

	done := make(chan Result, 1) // buffered: an abandoned Run still finishes
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- Result{Verdict: Fail, Err: fmt.Errorf("validate: check %q panicked: %v", name, p)}
			}
		}()
		done <- c.Run(actx)
	}()

	select {
	case res = <-done:
	case <-actx.Done():
		var ok bool
		if res, ok = s.await(done, s.opts.Grace); !ok {
			cause := context.Cause(actx)
			return Result{Check: name, Verdict: Fail,
				Err: fmt.Errorf("validate: check %q: %w (Run ignored cancellation for %s; abandoned)", name, cause, s.opts.Grace)}, true
		}
	}
	res = normalise(name, res)
	if cause := context.Cause(actx); cause != nil && res.Verdict != Pass && !errors.Is(res.Err, cause) {
		res.Err = fmt.Errorf("validate: check %q: %w: %w", name, cause, res.Err)
	}
	return res, false
}

// await waits up to d for a result from done.
func (s *Suite) await(done <-chan Result, d time.Duration) (Result, bool) {
	select {
	case res := <-done:
		return res, true
	default:
	}
	expired := make(chan struct{})
	stop := time.AfterFunc(d, func() { close(expired) }).Stop
	defer stop()
	select {
	case res := <-done:
		return res, true
	case <-expired:
		return Result{}, false
	}
}

// sleep waits d or until ctx ends.
func (s *Suite) sleep(ctx context.Context, d time.Duration) error {
	expired := make(chan struct{})
	stop := time.AfterFunc(d, func() { close(expired) }).Stop
	defer stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return nil
	}
}

// normalise makes a check's result trustworthy: the name is the check's,
// an undefined verdict or a score outside [0, 1] is a Fail, and a Pass
// with an error is a Fail (never a pass by default).
func normalise(name string, r Result) Result {
	r.Check = name
	switch {
	case !r.Verdict.valid():
		r.Err = errors.Join(fmt.Errorf("validate: check %q returned undefined verdict %d", name, int(r.Verdict)), r.Err)
		r.Verdict, r.Score = Fail, 0
	case math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1:
		r.Err = errors.Join(fmt.Errorf("validate: check %q returned score %v outside [0, 1]", name, r.Score), r.Err)
		r.Verdict, r.Score = Fail, 0
	case r.Verdict == Pass && r.Err != nil:
		r.Err = fmt.Errorf("validate: check %q returned pass with an error, counted as fail: %w", name, r.Err)
		r.Verdict, r.Score = Fail, 0
	case r.Verdict == Pass && r.Score == 0:
		r.Score = 1 // the zero value: the check did not set a score
	}
	return r
}
