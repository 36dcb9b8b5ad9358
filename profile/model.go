package profile

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// series is the bounded model of one resource of one function.
//
// Its forecast for a window is a point prediction plus a margin learnt
// from how far observations landed from the prediction made at the start
// of their horizon (an hour by default), in units of the function's
// long-run mean usage. Two point predictions run side by side: the
// recent level (a smoothed last value), and the level projected by a
// damped trend and the daily pattern (the mean of each hour of the day,
// once two days are seen) to its peak in the window. Each keeps a
// decaying histogram of its errors; the forecast uses the one whose
// errors cost less.
//
// The margin (P95) is not a fixed quantile: it is the reservation that
// would have minimised, over the recent history, the over-reservation
// plus OverrunCost mean usages for each observation above it. Where the
// errors are tightly bunched, covering nearly all of them costs little
// and P95 does; where they have a long thin tail (rare bursts), P95
// leaves the tail out rather than reserving for it all the time. Until
// enough errors are seen, a decaying histogram of the values themselves
// (the way VPA-style recommenders work) gives the forecast. Memory is
// fixed; each observation is O(1).
type series struct {
	n           int
	first, last time.Time

	// Welford running statistics over every observation, used while the
	// history is too short for the histograms to be trusted.
	mean, m2, max float64

	level, trend float64 // Holt level and trend; trend in units per second
	recent       float64 // level without trend: the observations smoothed over levelTau
	longMean     float64 // mean decaying over the half-life: the unit of errors

	hourMean [24]float64 // EWMA of observations in each UTC hour of the day
	hourN    [24]int32

	anchor anchor                   // predictions made at the start of the current horizon
	errs   [predictors]errHistogram // errors of each prediction against its anchor

	values      logHistogram // the observations; created at the first positive one
	zerosBefore int          // zero observations before values existed
}

// The point predictions.
const (
	flat       = 0 // the recent level
	pattern    = 1 // level, damped trend and daily pattern, at their peak in the window
	predictors = 2
)

// patternAdvantage is how much lower (as a factor) the pattern
// prediction's error cost must be before it is preferred to the recent
// level, so that a trend or daily pattern is used only where the history
// clearly shows one.
const patternAdvantage = 0.9

// anchor is what the series predicted at the start of a horizon; the
// observations until end are scored against it, the way a reservation
// made at at is held until end.
type anchor struct {
	end   time.Time
	scale float64
	point [predictors]float64
}

// modelParams are the tunables of every series, fixed by the Analyzer.
type modelParams struct {
	levelTau    time.Duration // smoothing time constant of the level
	trendTau    time.Duration // smoothing time constant of the trend
	horizon     time.Duration // the window forecasts are tuned for
	halfLife    time.Duration // decay of the histograms and of the long-run mean
	minSamples  int           // below this, forecasts use the wide small-sample interval
	overrunCost float64       // cost of one overrun, in mean usages over-reserved for one observation
}

// Seasonality needs this much history and this many visits of an hour.
const (
	seasonalSpan   = 48 * time.Hour
	seasonalVisits = 2
	hourAlpha      = 0.3 // weight of a new observation in its hour's mean
)

func (s *series) observe(p *modelParams, t time.Time, x float64) {
	if s.n == 0 {
		s.first, s.last = t, t
		s.level, s.recent, s.longMean, s.max = x, x, x, x
	}
	s.n++
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
	s.max = math.Max(s.max, x)

	// Score this point against what each prediction said at the start of
	// its horizon, before the model learns from it.
	if s.n > 1 && !t.Before(s.anchor.end) {
		s.reanchor(p, t)
	}
	if !s.anchor.end.IsZero() {
		for k := range s.errs {
			s.errs[k].add(p.halfLife, t, (x-s.anchor.point[k])/s.anchor.scale)
		}
	}
	s.addValue(p, t, x)

	dt := t.Sub(s.last).Seconds()
	if dt < 0 {
		dt = 0 // a late sample updates the level but not the trend
	}
	if s.n > 1 {
		predicted := s.level + s.trend*dt
		a := 1 - math.Exp(-dt/p.levelTau.Seconds())
		if dt == 0 {
			a = 1 / float64(min(s.n, 8)) // several points at one instant: average them
		}
		newLevel := math.Max(predicted+a*(x-predicted), 0)
		if dt > 0 {
			b := 1 - math.Exp(-dt/p.trendTau.Seconds())
			s.trend += b * ((newLevel-s.level)/dt - s.trend)
		}
		s.level = newLevel
		s.recent += a * (x - s.recent)
		s.longMean += (1 - math.Exp2(-dt/p.halfLife.Seconds())) * (x - s.longMean)
	}
	if t.After(s.last) {
		s.last = t
	}

	h := t.UTC().Hour()
	if s.hourN[h] == 0 {
		s.hourMean[h] = x
	} else {
		s.hourMean[h] += hourAlpha * (x - s.hourMean[h])
	}
	s.hourN[h]++
}

// reanchor starts a new horizon at t (aligned to the first observation)
// with the predictions the model makes now.
func (s *series) reanchor(p *modelParams, t time.Time) {
	k := t.Sub(s.first) / p.horizon
	s.anchor.end = s.first.Add((k + 1) * p.horizon)
	s.anchor.scale = s.scale()
	s.anchor.point[flat] = s.recent
	s.anchor.point[pattern] = s.peak(p, t, p.horizon)
}

// scale is the unit of errors: the long-run mean, or the smallest
// positive number while that is zero.
func (s *series) scale() float64 {
	return math.Max(s.longMean, math.SmallestNonzeroFloat64)
}

func (s *series) addValue(p *modelParams, t time.Time, x float64) {
	if s.values.weights == nil {
		if x <= 0 {
			s.zerosBefore++
			return
		}
		s.values = newLogHistogram(x/valueRange, valueGrowth, valueBucketsLen)
		for range s.zerosBefore {
			s.values.add(p.halfLife, t, 0)
		}
	}
	s.values.add(p.halfLife, t, x)
}

// seasonalShift is how much higher the usual demand at to's hour of the
// day is than at from's, or 0 while the history is too short (under two
// days) to show a daily pattern.
func (s *series) seasonalShift(from, to time.Time) float64 {
	if !s.seasonal() {
		return 0
	}
	hf, ht := from.UTC().Hour(), to.UTC().Hour()
	if s.hourN[hf] < seasonalVisits || s.hourN[ht] < seasonalVisits {
		return 0
	}
	return s.hourMean[ht] - s.hourMean[hf]
}

func (s *series) seasonal() bool { return s.last.Sub(s.first) >= seasonalSpan }

// pointForecast is what the model expects at t from a level and trend
// taken at from, with the daily pattern, never below refFloor of the
// long-run mean.
func (s *series) pointForecast(p *modelParams, from time.Time, level, trend float64, t time.Time) float64 {
	// The level follows observations with a lag of about levelTau, so it
	// stands for the hour of the day that long before from.
	v := project(p, level, trend, t.Sub(from).Seconds()) + s.seasonalShift(from.Add(-p.levelTau), t)
	return math.Max(v, refFloor*s.longMean)
}

// peak is the highest point forecast of the level, trend and daily
// pattern within [at, at+window].
func (s *series) peak(p *modelParams, at time.Time, window time.Duration) float64 {
	from := s.last
	if at.Before(from) {
		from = at
	}
	peak := 0.0
	steps := int(window/time.Hour) + 1
	for i := 0; i <= steps; i++ {
		t := at.Add(time.Duration(float64(window) * float64(i) / float64(steps)))
		peak = math.Max(peak, s.pointForecast(p, from, s.level, s.trend, t))
	}
	return math.Min(peak, math.MaxFloat64)
}

// minErrors is how many scored observations the error histograms need
// before forecasts rest on them, in multiples of MinSamples.
const minErrors = 2

// conditional returns the forecast of prediction k: its point prediction
// for [at, at+window] plus the margins learnt from its errors.
func (s *series) conditional(p *modelParams, k int, at time.Time, window time.Duration) (q50, q95, q99 float64) {
	point := s.recent
	if k == pattern {
		point = s.peak(p, at, window)
	}
	unit := s.scale()
	e := &s.errs[k]
	margin, _ := e.reservation(p.overrunCost)
	q95 = math.Max(point+margin*unit, 0)
	q50 = math.Min(math.Max(point+e.quantile(0.5)*unit, 0), q95)
	q99 = math.Max(point+e.quantile(0.99)*unit, q95)
	return q50, q95, q99
}

// forecast returns the p50, p95 and p99 demand over [at, at+window] and,
// in words, what they rest on. Quantities are finite: demand beyond the
// largest float64 (only seen in fuzzing) is reported as that.
func (s *series) forecast(p *modelParams, at time.Time, window time.Duration) (q50, q95, q99 float64, basis string) {
	q50, q95, q99, basis = s.forecastRaw(p, at, window)
	return finite(q50), finite(q95), finite(q99), basis
}

func finite(x float64) float64 {
	if math.IsNaN(x) {
		return math.MaxFloat64
	}
	return math.Min(x, math.MaxFloat64)
}

func (s *series) forecastRaw(p *modelParams, at time.Time, window time.Duration) (q50, q95, q99 float64, basis string) {
	switch {
	case s.n == 0:
		return 0, 0, 0, "no observations"
	case s.n < p.minSamples || s.values.total == 0 && s.zerosBefore == 0:
		q50, q95, q99 = s.smallSample()
		return q50, q95, q99, fmt.Sprintf("only %d observations (fewer than %d): wide small-sample interval", s.n, p.minSamples)
	case s.values.total == 0:
		return 0, 0, 0, fmt.Sprintf("%d observations, all zero", s.n)
	}
	if s.errs[flat].count >= minErrors*p.minSamples {
		_, costFlat := s.errs[flat].reservation(p.overrunCost)
		_, costPattern := s.errs[pattern].reservation(p.overrunCost)
		if costPattern < patternAdvantage*costFlat {
			q50, q95, q99 = s.conditional(p, pattern, at, window)
			what := "level and trend"
			if s.seasonal() {
				what = "level, trend and daily pattern"
			}
			return q50, q95, q99, fmt.Sprintf("%s from %d observations, plus the margin that minimised over-reservation and overruns (error cost %.3g against %.3g for the recent level)",
				what, s.n, costPattern, costFlat)
		}
		q50, q95, q99 = s.conditional(p, flat, at, window)
		return q50, q95, q99, fmt.Sprintf("recent level from %d observations, plus the margin that minimised over-reservation and overruns (error cost %.3g)",
			s.n, costFlat)
	}
	return s.values.quantile(0.5), s.values.quantile(0.95), s.values.quantile(0.99),
		fmt.Sprintf("distribution of %d observations, decaying with a %v half-life", s.n, p.halfLife)
}

// smallSample is the wide prediction interval used while the history is
// short: mean + t(n-1)·sd·√(1+1/n) from Student's t, never below the
// largest value seen, and with a single observation x: x, 2x, 4x.
func (s *series) smallSample() (q50, q95, q99 float64) {
	if s.n < 2 {
		return s.mean, 2 * s.max, 4 * s.max
	}
	n := float64(s.n)
	sd := math.Sqrt(s.m2 / (n - 1))
	if sd == 0 {
		sd = 0.1 * math.Abs(s.mean) // identical values are not proof of no spread
	}
	tdist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}
	spread := sd * math.Sqrt(1+1/n)
	q50 = math.Max(s.mean, 0)
	q95 = math.Max(s.mean+tdist.Quantile(0.95)*spread, s.max)
	q99 = math.Max(s.mean+tdist.Quantile(0.99)*spread, q95)
	return q50, q95, q99
}

// confidence is 0 with no history and approaches 1 as observations and
// the span of history covered grow relative to the window.
func (s *series) confidence(p *modelParams, window time.Duration) float64 {
	if s.n == 0 {
		return 0
	}
	byCount := float64(s.n) / float64(s.n+p.minSamples)
	span := s.last.Sub(s.first)
	need := max(window, p.horizon) * 4
	bySpan := math.Min(1, float64(span+window)/float64(need+window))
	return byCount * bySpan
}

// refFloor keeps the trend and pattern forecast of a series that is idle
// now but busy on average from collapsing to zero: it is never below this
// share of the long-run mean.
const refFloor = 0.05

// project extrapolates a level by a damped trend: the trend's effect
// saturates after about one horizon, so a short climb is not projected
// for ever.
func project(p *modelParams, level, trend, ahead float64) float64 {
	tau := p.horizon.Seconds()
	return math.Max(level+trend*tau*(1-math.Exp(-ahead/tau)), 0)
}
