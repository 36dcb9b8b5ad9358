package validate

import (
	"context"
	"errors"
	"fmt"
	"github.com/updraft-dev/updraft/validate/internal/stats"
	"math"
	"slices"
	"sync"
)

// Direction says which way a metric gets worse.
type Direction int

const (
	// LowerIsBetter: an increase is a regression (latency, errors, memory).
	LowerIsBetter Direction = iota
	// HigherIsBetter: a decrease is a regression (throughput, hit ratio).
	HigherIsBetter
	// EitherIsWorse: any shift is a regression (a value meant to stay put).
	EitherIsWorse
)

// String returns "lower is better", "higher is better" or "either is worse".
func (d Direction) String() string {
	switch d {
	case LowerIsBetter:
		return "lower is better"
	case HigherIsBetter:
		return "higher is better"
	case EitherIsWorse:
		return "either is worse"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Defaults for zero fields of [MetricOptions] and [RateOptions].
const (
	// DefaultConfidence is the confidence of the statistical tests (α = 0.05).
	DefaultConfidence = 0.95
	// DefaultTolerance is the relative shift of the median tolerated even
	// when it is statistically significant (10%).
	DefaultTolerance = 0.10
	// DefaultMinSamples is the fewest samples per side a comparison judges.
	DefaultMinSamples = 20
)

// QuantileBound limits how much one quantile may regress: with Quantile
// 0.99 and MaxRegression 0.2, p99 may not grow by more than 20% (for
// LowerIsBetter; fall, for HigherIsBetter).
type QuantileBound struct {
	Quantile      float64 // in (0, 1)
	MaxRegression float64 // relative, ≥ 0
}

// MetricOptions configure a [MetricComparison]. Zero fields take the
// documented defaults.
type MetricOptions struct {
	// Direction says which way is worse; the zero value is LowerIsBetter.
	Direction Direction
	// Confidence of the Mann-Whitney test and of the quantile intervals, in
	// (0.5, 1); 0 means DefaultConfidence.
	Confidence float64
	// Tolerance is the relative regression of the median tolerated even if
	// significant; 0 means DefaultTolerance. Use NoTolerance for none.
	Tolerance float64
	// Bounds limit the regression of quantiles (effect-size bounds, for
	// example p99 may not grow more than 20%).
	Bounds []QuantileBound
	// MinSamples is the fewest samples per side to judge; fewer give
	// Marginal. 0 means DefaultMinSamples.
	MinSamples int
	// Unit names the samples' unit in evidence ("ms", "req/s").
	Unit string
}

// NoTolerance, as MetricOptions.Tolerance, makes any significant regression
// of the median a failure.
const NoTolerance = -1

func (o MetricOptions) withDefaults() (MetricOptions, error) {
	var errs []error
	if o.Direction < LowerIsBetter || o.Direction > EitherIsWorse {
		errs = append(errs, fmt.Errorf("field Direction %d is undefined", int(o.Direction)))
	}
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	} else if !(o.Confidence > 0.5 && o.Confidence < 1) {
		errs = append(errs, fmt.Errorf("field Confidence %v is outside (0.5, 1)", o.Confidence))
	}
	switch {
	case o.Tolerance == 0:
		o.Tolerance = DefaultTolerance
	case o.Tolerance == NoTolerance:
		o.Tolerance = 0
	case !(o.Tolerance > 0) || math.IsInf(o.Tolerance, 0):
		errs = append(errs, fmt.Errorf("field Tolerance %v is not a positive finite number (or NoTolerance)", o.Tolerance))
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	} else if o.MinSamples < 2 {
		errs = append(errs, fmt.Errorf("field MinSamples %d is below 2", o.MinSamples))
	}
	for i, b := range o.Bounds {
		if !(b.Quantile > 0 && b.Quantile < 1) {
			errs = append(errs, fmt.Errorf("field Bounds[%d].Quantile %v is outside (0, 1)", i, b.Quantile))
		}
		if !(b.MaxRegression >= 0) || math.IsInf(b.MaxRegression, 0) {
			errs = append(errs, fmt.Errorf("field Bounds[%d].MaxRegression %v is not a finite number ≥ 0", i, b.MaxRegression))
		}
	}
	o.Bounds = slices.Clone(o.Bounds)
	return o, errors.Join(errs...)
}

// MetricComparison is a [Check] and [BaselineRecorder] comparing a
// metric's distribution after the update with the one recorded before,
// as Kayenta's Mann-Whitney judge does:
//
//   - a one-sided Mann-Whitney U test (two-sided for EitherIsWorse) at the
//     configured confidence, and the relative regression of the median;
//     the check fails when the shift is significant and the regression
//     exceeds the tolerance;
//   - effect-size bounds per quantile (p99 may not grow more than X%): a
//     bound fails only when it is exceeded and the two quantiles'
//     distribution-free confidence intervals do not overlap, so noise in
//     the tail of a small sample is not a regression;
//   - fewer than MinSamples on either side, or no baseline, is Marginal
//     with the reason.
//
// Score is 1 with no regression, 0.5 at the tolerance, and falls towards 0
// as the regression grows past it. Evidence lists the sample sizes,
// medians, quantiles, U, z and p. Safe for concurrent use.
type MetricComparison struct {
	name   string
	source Source
	opts   MetricOptions

	mu       sync.Mutex
	recorded bool      // a baseline was recorded; guarded by mu
	baseline []float64 // sorted; guarded by mu
}

var (
	_ Check            = (*MetricComparison)(nil)
	_ BaselineRecorder = (*MetricComparison)(nil)
	_ Retrier          = (*MetricComparison)(nil)
)

// NewMetricComparison returns a comparison of the samples source gives
// before and after the update. It rejects an empty name, a nil source and
// bad options, naming the field.
func NewMetricComparison(name string, source Source, opts MetricOptions) (*MetricComparison, error) {
	if name == "" {
		return nil, errors.New("validate: NewMetricComparison: empty name")
	}
	if source == nil {
		return nil, fmt.Errorf("validate: NewMetricComparison %q: nil source", name)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("validate: NewMetricComparison %q: MetricOptions: %w", name, err)
	}
	return &MetricComparison{name: name, source: source, opts: o}, nil
}

// Name returns the comparison's name.
func (m *MetricComparison) Name() string { return m.name }

// RecordBaseline takes the pre-update samples from the source. Too few
// samples are recorded all the same; Run then reports Marginal.
func (m *MetricComparison) RecordBaseline(ctx context.Context) error {
	s, err := m.source.Samples(ctx)
	if err != nil {
		return fmt.Errorf("validate: metric %q: baseline samples: %w", m.name, err)
	}
	return m.SetBaseline(s)
}

// SetBaseline sets the pre-update samples directly (a copy is kept), for
// hosts that keep their own history. It rejects NaN and infinite values.
func (m *MetricComparison) SetBaseline(samples []float64) error {
	if err := checkFinite(samples); err != nil {
		return fmt.Errorf("validate: metric %q: baseline: %w", m.name, err)
	}
	sorted := stats.SortedCopy(samples)
	m.mu.Lock()
	m.recorded, m.baseline = true, sorted
	m.mu.Unlock()
	return nil
}

func checkFinite(s []float64) error {
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sample %d is %v", i, v)
		}
	}
	return nil
}

// ShouldRetry retries only when the samples could not be taken: a verdict
// drawn from the samples would not change by judging them again.
func (m *MetricComparison) ShouldRetry(r Result) bool {
	return r.Err != nil && !errors.Is(r.Err, ErrTooFewSamples) && !errors.Is(r.Err, ErrNoBaseline) &&
		!errors.Is(r.Err, ErrRegression)
}

// ErrRegression is wrapped by Result.Err of a comparison that found a
// regression beyond its tolerance or bounds.
var ErrRegression = errors.New("validate: regression")

// Run takes the post-update samples and judges them against the baseline.
func (m *MetricComparison) Run(ctx context.Context) Result {
	m.mu.Lock()
	recorded, base := m.recorded, m.baseline
	m.mu.Unlock()
	if !recorded {
		return Result{Check: m.name, Verdict: Marginal, Score: 0.5, Err: ErrNoBaseline,
			Evidence: []string{"no baseline: RecordBaseline was not called before the update"}}
	}
	now, err := m.source.Samples(ctx)
	if err == nil {
		err = checkFinite(now)
	}
	if err != nil {
		return Result{Check: m.name, Verdict: Fail, Err: fmt.Errorf("validate: metric %q: samples: %w", m.name, err)}
	}
	return m.Judge(base, now)
}

// Judge compares post-update samples now with the baseline base (neither
// needs to be sorted) and returns the verdict with its evidence, without
// calling the source: the statistics of Run, for callers that hold both
// samples already.
func (m *MetricComparison) Judge(base, now []float64) Result {
	res := Result{Check: m.name}
	if err := errors.Join(checkFinite(base), checkFinite(now)); err != nil {
		res.Verdict, res.Err = Fail, fmt.Errorf("validate: metric %q: %w", m.name, err)
		return res
	}
	if !slices.IsSorted(base) {
		base = stats.SortedCopy(base)
	}
	now = stats.SortedCopy(now)
	if len(base) < m.opts.MinSamples || len(now) < m.opts.MinSamples {
		res.Verdict, res.Score = Marginal, 0.5
		res.Err = fmt.Errorf("%w: metric %q has %d baseline and %d new samples, needs %d each",
			ErrTooFewSamples, m.name, len(base), len(now), m.opts.MinSamples)
		res.Evidence = []string{fmt.Sprintf("samples: baseline n=%d, now n=%d (minimum %d)", len(base), len(now), m.opts.MinSamples)}
		return res
	}
	alpha := 1 - m.opts.Confidence
	alt := map[Direction]stats.Alternative{LowerIsBetter: stats.Greater, HigherIsBetter: stats.Less, EitherIsWorse: stats.TwoSided}[m.opts.Direction]
	mw := stats.MannWhitneySorted(now, base, alt)
	significant := mw.PValue < alpha

	baseMed, nowMed := stats.Quantile(base, 0.5), stats.Quantile(now, 0.5)
	if baseMed == 0 && nowMed == 0 { // sparse counts: the mean says more
		baseMed, nowMed = mean(base), mean(now)
	}
	medReg := m.regression(baseMed, nowMed)
	res.Evidence = append(res.Evidence,
		fmt.Sprintf("samples: baseline n=%d, now n=%d", len(base), len(now)),
		fmt.Sprintf("median %s → %s (%s, tolerance %s)", m.num(baseMed), m.num(nowMed), pct(m.change(baseMed, nowMed)), pctBound(m.opts.Tolerance)),
		fmt.Sprintf("Mann-Whitney U=%.1f z=%.2f p=%.3g (%s, α=%.3g%s): %s", mw.U, mw.Z, mw.PValue, alt, alpha,
			map[bool]string{true: ", exact", false: ""}[mw.Exact],
			map[bool]string{true: "significant", false: "not significant"}[significant]))

	var failures []error
	worst := 0.0 // largest regression / limit over all criteria
	if significant && medReg > m.opts.Tolerance {
		failures = append(failures, fmt.Errorf("median regressed %s (tolerance %s)", pct(medReg), pctBound(m.opts.Tolerance)))
	}
	worst = max(worst, ratio(medReg, m.opts.Tolerance))
	for _, b := range m.opts.Bounds {
		line, violated, r := m.judgeBound(b, base, now)
		res.Evidence = append(res.Evidence, line)
		if violated {
			failures = append(failures, fmt.Errorf("p%s regressed beyond %s", qname(b.Quantile), pctBound(b.MaxRegression)))
		}
		worst = max(worst, r)
	}
	if len(failures) > 0 {
		res.Verdict = Fail
		res.Score = min(0.49, 0.5/max(worst, 1))
		res.Err = fmt.Errorf("%w: metric %q: %w", ErrRegression, m.name, errors.Join(failures...))
		return res
	}
	res.Verdict = Pass
	res.Score = max(0.5, 1-0.5*worst)
	return res
}

// judgeBound checks one quantile bound; r is regression / limit.
func (m *MetricComparison) judgeBound(b QuantileBound, base, now []float64) (line string, violated bool, r float64) {
	bq, nq := stats.Quantile(base, b.Quantile), stats.Quantile(now, b.Quantile)
	reg := m.regression(bq, nq)
	blo, bhi := stats.QuantileInterval(base, b.Quantile, m.opts.Confidence)
	nlo, nhi := stats.QuantileInterval(now, b.Quantile, m.opts.Confidence)
	var separated bool
	switch m.opts.Direction {
	case LowerIsBetter:
		separated = nlo > bhi
	case HigherIsBetter:
		separated = nhi < blo
	default:
		separated = nlo > bhi || nhi < blo
	}
	exceeded := reg > b.MaxRegression
	violated = exceeded && separated
	verdict := "within bound"
	switch {
	case violated:
		verdict = "violated"
	case exceeded:
		verdict = "exceeded but confidence intervals overlap (not significant)"
	}
	line = fmt.Sprintf("p%s %s → %s (%s, bound %s; %.0f%% intervals [%s, %s] → [%s, %s]): %s",
		qname(b.Quantile), m.num(bq), m.num(nq), pct(m.change(bq, nq)), pctBound(b.MaxRegression),
		m.opts.Confidence*100, m.num(blo), m.num(bhi), m.num(nlo), m.num(nhi), verdict)
	return line, violated, ratio(reg, b.MaxRegression)
}

// change is the relative change from base to now (+1 = doubled).
func (m *MetricComparison) change(base, now float64) float64 {
	switch {
	case base == now:
		return 0
	case base == 0:
		return math.Copysign(math.Inf(1), now)
	}
	return (now - base) / math.Abs(base)
}

// regression is the relative change in the bad direction (≤ 0 when better).
func (m *MetricComparison) regression(base, now float64) float64 {
	c := m.change(base, now)
	switch m.opts.Direction {
	case HigherIsBetter:
		return -c
	case EitherIsWorse:
		return math.Abs(c)
	}
	return c
}

func (m *MetricComparison) num(v float64) string {
	if m.opts.Unit == "" {
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.4g%s", v, m.opts.Unit)
}

// ratio is reg / limit, with a zero limit meaning any regression is at it.
func ratio(reg, limit float64) float64 {
	if reg <= 0 {
		return 0
	}
	if limit == 0 {
		return math.Inf(1)
	}
	return reg / limit
}

func mean(s []float64) float64 {
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}

func pct(f float64) string      { return fmt.Sprintf("%+.1f%%", f*100) }
func pctBound(f float64) string { return fmt.Sprintf("+%.0f%%", f*100) }
func qname(q float64) string    { return fmt.Sprintf("%g", q*100) }
