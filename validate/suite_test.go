package validate_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/validate"
)

// checkFunc is an in-memory Check whose Run is a closure.
type checkFunc struct {
	name string
	run  func(ctx context.Context) validate.Result
}

func (c checkFunc) Name() string                            { return c.name }
func (c checkFunc) Run(ctx context.Context) validate.Result { return c.run(ctx) }
func result(v validate.Verdict, score float64) validate.Result {
	return validate.Result{Verdict: v, Score: score}
}
func fixed(name string, v validate.Verdict, s float64) checkFunc {
	return checkFunc{name, func(context.Context) validate.Result { return result(v, s) }}
}

func TestVerdictString(t *testing.T) {
	require.Equal(t, "pass", validate.Pass.String())
	require.Equal(t, "marginal", validate.Marginal.String())
	require.Equal(t, "fail", validate.Fail.String())
	require.Equal(t, "Verdict(9)", validate.Verdict(9).String())
	require.Equal(t, validate.Fail, validate.Worst(validate.Pass, validate.Fail))
	require.Equal(t, validate.Marginal, validate.Worst(validate.Marginal, validate.Pass))
	require.Equal(t, validate.Fail, validate.Worst(validate.Pass, validate.Verdict(-1)))
}

func TestNewRefusesBadChecksAndOptions(t *testing.T) {
	ok := validate.Func("ok", func(context.Context) error { return nil })
	_, err := validate.New([]validate.Check{ok, validate.Func("ok", nil)}, validate.Options{})
	require.ErrorIs(t, err, validate.ErrDuplicateCheck)
	require.ErrorContains(t, err, `"ok" is check 0 and check 1`)

	_, err = validate.New([]validate.Check{ok, nil}, validate.Options{})
	require.ErrorContains(t, err, "check 1 is nil")

	_, err = validate.New([]validate.Check{validate.Func("", nil)}, validate.Options{})
	require.ErrorContains(t, err, "empty name")

	_, err = validate.New([]validate.Check{ok}, validate.Options{Timeout: -1, Retries: -2, Concurrency: -1})
	require.ErrorContains(t, err, "Options.Timeout is negative")
	require.ErrorContains(t, err, "Options.Retries is negative")
	require.ErrorContains(t, err, "Options.Concurrency is negative")
}

func TestValidateRefusesNoChecksUnlessAllowed(t *testing.T) {
	s, err := validate.New(nil, validate.Options{})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.ErrorIs(t, err, validate.ErrNoChecks)
	require.Equal(t, validate.Fail, rep.Verdict, "a refused validation must not read as a pass")

	s, err = validate.New(nil, validate.Options{AllowNoChecks: true})
	require.NoError(t, err)
	rep, err = s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, validate.Pass, rep.Verdict)
	require.Contains(t, rep.String(), "AllowNoChecks")
}

func TestReportCollectsEveryFailureInOrder(t *testing.T) {
	boom := errors.New("route table empty")
	checks := []validate.Check{
		validate.Func("a-pass", func(context.Context) error { return nil }),
		validate.Func("b-fail", func(context.Context) error { return boom }),
		fixed("c-marginal", validate.Marginal, 0.5),
		validate.Func("d-fail", func(context.Context) error { return errors.New("no session") }),
	}
	s, err := validate.New(checks, validate.Options{})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err, "failing checks are a verdict, not an error")
	require.Equal(t, validate.Fail, rep.Verdict)
	require.Equal(t, 0.0, rep.Score)
	require.Equal(t, []string{"a-pass", "b-fail", "c-marginal", "d-fail"}, names(rep.Results))
	for _, r := range rep.Results {
		require.Equal(t, 1, r.Attempts, r.Check)
	}

	repErr := rep.Err()
	var merr *multierror.Error
	require.ErrorAs(t, repErr, &merr)
	require.Len(t, merr.Errors, 3)
	require.ErrorIs(t, repErr, validate.ErrCheckFailed)
	require.ErrorIs(t, repErr, validate.ErrCheckMarginal)
	require.ErrorIs(t, repErr, boom)
	var ce *validate.CheckError
	require.ErrorAs(t, merr.Errors[0], &ce)
	require.Equal(t, "b-fail", ce.Result.Check)
	require.Contains(t, repErr.Error(), "route table empty")
	require.Contains(t, repErr.Error(), "no session")

	out := rep.String()
	for _, want := range []string{"validation: fail", "a-pass", "b-fail", "c-marginal", "d-fail", "route table empty"} {
		require.Contains(t, out, want)
	}
}

func TestReportPassHasNoError(t *testing.T) {
	s, err := validate.New([]validate.Check{fixed("a", validate.Pass, 0.9), fixed("b", validate.Pass, 0)}, validate.Options{})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, validate.Pass, rep.Verdict)
	require.NoError(t, rep.Err())
	require.Equal(t, 0.9, rep.Score, "the report's score is the lowest; a pass without a score counts as 1")
}

func TestUntrustworthyResultsFail(t *testing.T) {
	checks := []validate.Check{
		checkFunc{"pass-with-error", func(context.Context) validate.Result {
			return validate.Result{Verdict: validate.Pass, Score: 1, Err: errors.New("half broken")}
		}},
		fixed("undefined-verdict", validate.Verdict(42), 1),
		fixed("score-nan", validate.Pass, math.NaN()),
		fixed("score-above-one", validate.Pass, 1.5),
		checkFunc{"panics", func(context.Context) validate.Result { panic("nil map") }},
		validate.Func("nil-func", nil),
		checkFunc{"wrong-name", func(context.Context) validate.Result {
			return validate.Result{Check: "impostor", Verdict: validate.Fail, Err: errors.New("bad")}
		}},
	}
	s, err := validate.New(checks, validate.Options{})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	for _, r := range rep.Results {
		require.Equal(t, validate.Fail, r.Verdict, r.Check)
		require.Error(t, r.Err, r.Check)
		require.Zero(t, r.Score, r.Check)
	}
	require.Equal(t, "wrong-name", rep.Results[6].Check)
	require.ErrorContains(t, rep.Results[4].Err, "panicked: nil map")
}

func TestChecksRunConcurrently(t *testing.T) {
	const n = 6
	var arrived atomic.Int32
	all := make(chan struct{})
	checks := make([]validate.Check, n)
	for i := range checks {
		checks[i] = validate.Func(string(rune('a'+i)), func(ctx context.Context) error {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all: // every check is running at once
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	s, err := validate.New(checks, validate.Options{Timeout: 20 * time.Second})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, validate.Pass, rep.Verdict, rep.String())
}

func TestConcurrencyLimit(t *testing.T) {
	const n, limit = 8, 2
	var inflight, peak atomic.Int32
	entered := make(chan struct{}, n)
	gate := make(chan struct{})
	checks := make([]validate.Check, n)
	for i := range checks {
		checks[i] = validate.Func(string(rune('a'+i)), func(ctx context.Context) error {
			cur := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if cur <= p || peak.CompareAndSwap(p, cur) {
					break
				}
			}
			entered <- struct{}{}
			<-gate
			return nil
		})
	}
	s, err := validate.New(checks, validate.Options{Concurrency: limit})
	require.NoError(t, err)
	done := make(chan validate.Report)
	go func() {
		rep, _ := s.Validate(context.Background())
		done <- rep
	}()
	<-entered
	<-entered
	close(gate)
	rep := <-done
	require.Equal(t, validate.Pass, rep.Verdict)
	require.LessOrEqual(t, peak.Load(), int32(limit))
	require.Len(t, entered, n-limit, "every check ran")
}

func TestTimeoutCancelsTheCheck(t *testing.T) { synctest.Test(t, testTimeoutCancelsTheCheck) }

func testTimeoutCancelsTheCheck(t *testing.T) {
	blocked := checkFunc{"hangs-until-cancelled", func(ctx context.Context) validate.Result {
		<-ctx.Done()
		return validate.Result{Verdict: validate.Fail, Err: ctx.Err()}
	}}
	s, err := validate.New([]validate.Check{blocked}, validate.Options{Timeout: time.Hour, Grace: time.Minute})
	require.NoError(t, err)
	start := time.Now()
	rep, _ := s.Validate(context.Background())
	require.Equal(t, time.Hour, time.Since(start), "fake time spent waiting")
	r := rep.Results[0]
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrTimeout)
	require.ErrorIs(t, r.Err, context.Canceled)
	require.GreaterOrEqual(t, r.Duration, time.Hour)
}

func TestCheckIgnoringCancellationIsAbandoned(t *testing.T) {
	synctest.Test(t, testCheckIgnoringCancellationIsAbandoned)
}

func testCheckIgnoringCancellationIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // lets the abandoned Run end before the bubble does
	var runs atomic.Int32
	stubborn := checkFunc{"ignores-ctx", func(context.Context) validate.Result {
		runs.Add(1)
		<-release
		return result(validate.Pass, 1)
	}}
	s, err := validate.New([]validate.Check{stubborn}, validate.Options{Timeout: time.Hour, Grace: time.Minute, Retries: 3})
	require.NoError(t, err)
	start := time.Now()
	rep, _ := s.Validate(context.Background())
	require.Equal(t, time.Hour+time.Minute, time.Since(start), "fake time spent waiting")
	r := rep.Results[0]
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrTimeout)
	require.ErrorContains(t, r.Err, "abandoned")
	require.Equal(t, 1, r.Attempts, "an abandoned check is not run again beside itself")
	require.Equal(t, int32(1), runs.Load())
}

func TestRetriesFlakyCheckUntilItPasses(t *testing.T) {
	synctest.Test(t, testRetriesFlakyCheckUntilItPasses)
}

func testRetriesFlakyCheckUntilItPasses(t *testing.T) {
	var calls atomic.Int32
	flaky := validate.Func("flaky", func(context.Context) error {
		if calls.Add(1) < 3 {
			return errors.New("connection reset")
		}
		return nil
	})
	s, err := validate.New([]validate.Check{flaky}, validate.Options{Timeout: time.Hour, Retries: 5, RetryDelay: time.Second})
	require.NoError(t, err)
	start := time.Now()
	rep, _ := s.Validate(context.Background())
	require.Equal(t, 2*time.Second, time.Since(start), "fake time spent waiting")
	r := rep.Results[0]
	require.Equal(t, validate.Pass, r.Verdict, rep.String())
	require.Equal(t, 3, r.Attempts)
	require.Equal(t, 2*time.Second, r.Duration)
}

func TestRetriesAreBounded(t *testing.T) {
	var calls atomic.Int32
	broken := validate.Func("broken", func(context.Context) error {
		calls.Add(1)
		return errors.New("503")
	})
	// RetryDelay is tiny and real: the test waits for nothing but the Suite.
	s, err := validate.New([]validate.Check{broken}, validate.Options{Retries: 2, RetryDelay: time.Nanosecond})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, validate.Fail, rep.Verdict)
	require.Equal(t, 3, rep.Results[0].Attempts)
	require.Equal(t, int32(3), calls.Load())
}

// declines is a check that fails and implements Retrier to refuse retries.
type declines struct{ calls *atomic.Int32 }

func (declines) Name() string { return "declines" }
func (d declines) Run(context.Context) validate.Result {
	d.calls.Add(1)
	return validate.Result{Verdict: validate.Fail, Err: errors.New("deterministic")}
}
func (declines) ShouldRetry(validate.Result) bool { return false }

func TestRetrierCanDeclineRetries(t *testing.T) {
	var calls atomic.Int32
	s, err := validate.New([]validate.Check{declines{&calls}}, validate.Options{Retries: 4, RetryDelay: time.Nanosecond})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, rep.Results[0].Attempts)
	require.Equal(t, int32(1), calls.Load())
}

func TestValidateCutShortByContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var lateRan atomic.Bool
	checks := []validate.Check{
		validate.Func("quick", func(context.Context) error { return nil }),
		validate.Func("slow", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}),
		validate.Func("late", func(context.Context) error { lateRan.Store(true); return nil }),
	}
	s, err := validate.New(checks, validate.Options{Concurrency: 1})
	require.NoError(t, err)
	type out struct {
		rep validate.Report
		err error
	}
	done := make(chan out)
	go func() {
		rep, err := s.Validate(ctx)
		done <- out{rep, err}
	}()
	<-started
	cancel()
	o := <-done
	require.ErrorIs(t, o.err, context.Canceled)
	require.Equal(t, validate.Fail, o.rep.Verdict)
	require.Equal(t, validate.Pass, o.rep.Results[0].Verdict)
	require.Equal(t, validate.Fail, o.rep.Results[1].Verdict)
	require.Equal(t, validate.Fail, o.rep.Results[2].Verdict, "a check cut short is never a pass")
	require.ErrorContains(t, o.rep.Results[2].Err, "not run")
	require.False(t, lateRan.Load())

	_, err = s.Validate(ctx)
	require.ErrorIs(t, err, context.Canceled, "a done ctx refuses to start")
}

// recorder is a check that records a baseline, or fails to.
type recorder struct {
	name string
	err  error
	mu   sync.Mutex
	got  bool
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Run(context.Context) validate.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.got {
		return validate.Result{Verdict: validate.Marginal, Err: validate.ErrNoBaseline}
	}
	return result(validate.Pass, 1)
}
func (r *recorder) RecordBaseline(context.Context) error {
	if r.name == "panics" {
		panic("baseline store is nil")
	}
	if r.err != nil {
		return r.err
	}
	r.mu.Lock()
	r.got = true
	r.mu.Unlock()
	return nil
}

func TestRecordBaselineCallsEveryRecorderAndCollectsFailures(t *testing.T) {
	good := &recorder{name: "good"}
	bad1 := &recorder{name: "bad1", err: errors.New("meter offline")}
	bad2 := &recorder{name: "bad2", err: errors.New("no samples")}
	plain := validate.Func("plain", func(context.Context) error { return nil })
	s, err := validate.New([]validate.Check{good, plain, bad1, bad2, &recorder{name: "panics"}}, validate.Options{})
	require.NoError(t, err)
	err = s.RecordBaseline(context.Background())
	var merr *multierror.Error
	require.ErrorAs(t, err, &merr)
	require.Len(t, merr.Errors, 3)
	require.ErrorContains(t, merr.Errors[0], `check "bad1": record baseline: meter offline`)
	require.ErrorContains(t, merr.Errors[1], `check "bad2"`)
	require.ErrorContains(t, merr.Errors[2], `check "panics": record baseline: panicked: baseline store is nil`)

	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, validate.Pass, rep.Results[0].Verdict, "the good recorder got its baseline")
	require.Equal(t, validate.Marginal, rep.Results[2].Verdict)
	require.ErrorIs(t, rep.Results[2].Err, validate.ErrNoBaseline)
}

func TestLogsGoToTheCallersLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := validate.New([]validate.Check{validate.Func("x", func(context.Context) error { return errors.New("down") })},
		validate.Options{Logger: logger})
	require.NoError(t, err)
	_, err = s.Validate(context.Background())
	require.NoError(t, err)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	require.Contains(t, out, "validate: check did not pass")
	require.Contains(t, out, "check=x")
	require.Contains(t, out, "verdict=fail")
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func names(rs []validate.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Check
	}
	return out
}

func TestChecksListsNames(t *testing.T) {
	s, err := validate.New([]validate.Check{fixed("b", validate.Pass, 1), fixed("a", validate.Pass, 1)}, validate.Options{})
	require.NoError(t, err)
	require.Equal(t, "b,a", strings.Join(s.Checks(), ","))
}

func TestMetricsCountVerdictsAndAttempts(t *testing.T) {
	s, err := validate.New([]validate.Check{
		validate.Func("up", func(context.Context) error { return nil }),
		validate.Func("down", func(context.Context) error { return errors.New("x") }),
	}, validate.Options{Retries: 1, RetryDelay: time.Nanosecond})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(s.Collector()))
	for range 2 {
		_, err = s.Validate(context.Background())
		require.NoError(t, err)
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			key := f.GetName()
			for _, l := range metric.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case metric.GetCounter() != nil:
				got[key] = metric.GetCounter().GetValue()
			case metric.GetHistogram() != nil:
				got[key] = float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, map[string]float64{
		"updraft_validate_validations_total,verdict=fail":       2,
		"updraft_validate_checks_total,check=up,verdict=pass":   2,
		"updraft_validate_checks_total,check=down,verdict=fail": 2,
		"updraft_validate_check_attempts_total,check=up":        2,
		"updraft_validate_check_attempts_total,check=down":      4,
		"updraft_validate_check_duration_seconds,check=up":      2,
		"updraft_validate_check_duration_seconds,check=down":    2,
	}, got)
}

func TestWithTimeoutOverridesTheSuiteTimeout(t *testing.T) {
	synctest.Test(t, testWithTimeoutOverridesTheSuiteTimeout)
}

func testWithTimeoutOverridesTheSuiteTimeout(t *testing.T) {
	hang := validate.Func("hangs", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	base := &recorder{name: "records"}
	s, err := validate.New([]validate.Check{
		validate.WithTimeout(hang, time.Minute),
		validate.WithTimeout(base, 2*time.Minute),
	}, validate.Options{Timeout: time.Hour})
	require.NoError(t, err)
	require.NoError(t, s.RecordBaseline(context.Background()), "RecordBaseline is forwarded")
	start := time.Now()
	rep, _ := s.Validate(context.Background())
	require.Equal(t, time.Minute, time.Since(start), "fake time spent waiting")
	require.ErrorIs(t, rep.Results[0].Err, validate.ErrTimeout)
	require.ErrorContains(t, rep.Results[0].Err, "after 1m0s")
	require.Equal(t, validate.Pass, rep.Results[1].Verdict, "the wrapped recorder got its baseline")
}
