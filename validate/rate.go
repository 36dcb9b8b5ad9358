package validate

import (
	"context"
	"errors"
	"fmt"
	"github.com/updraft-dev/updraft/validate/internal/stats"
	"math"
	"sync"
)

// Defaults for zero fields of [RateOptions].
const (
	// DefaultAbsoluteTolerance is the rise of an event rate tolerated
	// whatever the baseline: half a percentage point.
	DefaultAbsoluteTolerance = 0.005
	// DefaultRelativeTolerance is the rise tolerated relative to the
	// baseline rate: +50%.
	DefaultRelativeTolerance = 0.5
	// DefaultMinTrials is the fewest trials per side a rate comparison judges.
	DefaultMinTrials = 100
)

// RateOptions configure a [RateComparison]. Zero fields take the defaults.
type RateOptions struct {
	// Confidence of Fisher's exact test, in (0.5, 1); 0 means DefaultConfidence.
	Confidence float64
	// AbsoluteTolerance is the rise of the rate (as a fraction: 0.01 is one
	// percentage point) tolerated; 0 means DefaultAbsoluteTolerance.
	AbsoluteTolerance float64
	// RelativeTolerance is the rise tolerated relative to the baseline rate
	// (0.5 is +50%); 0 means DefaultRelativeTolerance. The larger of the two
	// tolerances applies.
	RelativeTolerance float64
	// MinTrials is the fewest trials per side to judge; fewer give Marginal.
	// 0 means DefaultMinTrials.
	MinTrials int64
	// Events names what is counted in evidence ("errors").
	Events string
}

func (o RateOptions) withDefaults() (RateOptions, error) {
	var errs []error
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	} else if !(o.Confidence > 0.5 && o.Confidence < 1) {
		errs = append(errs, fmt.Errorf("field Confidence %v is outside (0.5, 1)", o.Confidence))
	}
	if o.AbsoluteTolerance == 0 {
		o.AbsoluteTolerance = DefaultAbsoluteTolerance
	} else if !(o.AbsoluteTolerance > 0 && o.AbsoluteTolerance < 1) {
		errs = append(errs, fmt.Errorf("field AbsoluteTolerance %v is outside (0, 1)", o.AbsoluteTolerance))
	}
	if o.RelativeTolerance == 0 {
		o.RelativeTolerance = DefaultRelativeTolerance
	} else if !(o.RelativeTolerance > 0) || math.IsInf(o.RelativeTolerance, 0) {
		errs = append(errs, fmt.Errorf("field RelativeTolerance %v is not a positive finite number", o.RelativeTolerance))
	}
	if o.MinTrials == 0 {
		o.MinTrials = DefaultMinTrials
	} else if o.MinTrials < 1 {
		errs = append(errs, fmt.Errorf("field MinTrials %d is below 1", o.MinTrials))
	}
	if o.Events == "" {
		o.Events = "events"
	}
	return o, errors.Join(errs...)
}

// RateComparison is a [Check] and [BaselineRecorder] comparing an event
// rate (errors per request) after the update with the one recorded before.
// It fails when Fisher's one-sided exact test says the rate rose at the
// configured confidence and the rise exceeds the larger of the absolute
// and relative tolerances; too few trials give Marginal. Score is 1 with no
// rise, 0.5 at the tolerance, falling towards 0 beyond it. Safe for
// concurrent use.
type RateComparison struct {
	name   string
	source CountSource
	opts   RateOptions

	mu           sync.Mutex
	baseRecorded bool  // guarded by mu
	baseEvents   int64 // guarded by mu
	baseTotal    int64 // guarded by mu
}

var (
	_ Check            = (*RateComparison)(nil)
	_ BaselineRecorder = (*RateComparison)(nil)
	_ Retrier          = (*RateComparison)(nil)
)

// NewRateComparison returns a comparison of the counts source gives
// before and after the update. It rejects an empty name, a nil source and
// bad options, naming the field.
func NewRateComparison(name string, source CountSource, opts RateOptions) (*RateComparison, error) {
	if name == "" {
		return nil, errors.New("validate: NewRateComparison: empty name")
	}
	if source == nil {
		return nil, fmt.Errorf("validate: NewRateComparison %q: nil source", name)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("validate: NewRateComparison %q: RateOptions: %w", name, err)
	}
	return &RateComparison{name: name, source: source, opts: o}, nil
}

// Name returns the comparison's name.
func (c *RateComparison) Name() string { return c.name }

// RecordBaseline takes the pre-update counts from the source.
func (c *RateComparison) RecordBaseline(ctx context.Context) error {
	events, total, err := c.source.Counts(ctx)
	if err != nil {
		return fmt.Errorf("validate: rate %q: baseline counts: %w", c.name, err)
	}
	return c.SetBaseline(events, total)
}

// SetBaseline sets the pre-update counts directly.
func (c *RateComparison) SetBaseline(events, total int64) error {
	if err := checkCounts(events, total); err != nil {
		return fmt.Errorf("validate: rate %q: baseline: %w", c.name, err)
	}
	c.mu.Lock()
	c.baseRecorded, c.baseEvents, c.baseTotal = true, events, total
	c.mu.Unlock()
	return nil
}

func checkCounts(events, total int64) error {
	if events < 0 || total < 0 || events > total {
		return fmt.Errorf("counts %d events of %d trials are impossible", events, total)
	}
	return nil
}

// ShouldRetry retries only when the counts could not be taken.
func (c *RateComparison) ShouldRetry(r Result) bool {
	return r.Err != nil && !errors.Is(r.Err, ErrTooFewSamples) && !errors.Is(r.Err, ErrNoBaseline) &&
		!errors.Is(r.Err, ErrRegression)
}

// Run takes the post-update counts and judges them against the baseline.
func (c *RateComparison) Run(ctx context.Context) Result {
	c.mu.Lock()
	recorded, be, bt := c.baseRecorded, c.baseEvents, c.baseTotal
	c.mu.Unlock()
	if !recorded {
		return Result{Check: c.name, Verdict: Marginal, Score: 0.5, Err: ErrNoBaseline,
			Evidence: []string{"no baseline: RecordBaseline was not called before the update"}}
	}
	ne, nt, err := c.source.Counts(ctx)
	if err == nil {
		err = checkCounts(ne, nt)
	}
	if err != nil {
		return Result{Check: c.name, Verdict: Fail, Err: fmt.Errorf("validate: rate %q: counts: %w", c.name, err)}
	}
	return c.Judge(be, bt, ne, nt)
}

// Judge compares post-update counts with baseline counts without calling
// the source.
func (c *RateComparison) Judge(baseEvents, baseTotal, nowEvents, nowTotal int64) Result {
	res := Result{Check: c.name}
	if err := errors.Join(checkCounts(baseEvents, baseTotal), checkCounts(nowEvents, nowTotal)); err != nil {
		res.Verdict, res.Err = Fail, fmt.Errorf("validate: rate %q: %w", c.name, err)
		return res
	}
	res.Evidence = []string{fmt.Sprintf("%s: baseline %d of %d, now %d of %d", c.opts.Events, baseEvents, baseTotal, nowEvents, nowTotal)}
	if baseTotal < c.opts.MinTrials || nowTotal < c.opts.MinTrials {
		res.Verdict, res.Score = Marginal, 0.5
		res.Err = fmt.Errorf("%w: rate %q has %d baseline and %d new trials, needs %d each",
			ErrTooFewSamples, c.name, baseTotal, nowTotal, c.opts.MinTrials)
		return res
	}
	baseRate := float64(baseEvents) / float64(baseTotal)
	nowRate := float64(nowEvents) / float64(nowTotal)
	allowed := max(c.opts.AbsoluteTolerance, c.opts.RelativeTolerance*baseRate)
	rise := nowRate - baseRate
	p, _ := stats.FisherExact(baseEvents, baseTotal, nowEvents, nowTotal) // counts checked above
	alpha := 1 - c.opts.Confidence
	significant := p < alpha
	res.Evidence = append(res.Evidence,
		fmt.Sprintf("rate %.3f%% → %.3f%% (%+.3f points, tolerance +%.3f points)", baseRate*100, nowRate*100, rise*100, allowed*100),
		fmt.Sprintf("Fisher exact one-sided p=%.3g (α=%.3g): %s", p, alpha,
			map[bool]string{true: "significant", false: "not significant"}[significant]))
	r := ratio(rise, allowed)
	if significant && rise > allowed {
		res.Verdict = Fail
		res.Score = min(0.49, 0.5/max(r, 1))
		res.Err = fmt.Errorf("%w: rate %q rose from %.3f%% to %.3f%% (tolerance +%.3f points)",
			ErrRegression, c.name, baseRate*100, nowRate*100, allowed*100)
		return res
	}
	res.Verdict = Pass
	res.Score = max(0.5, 1-0.5*r)
	return res
}
