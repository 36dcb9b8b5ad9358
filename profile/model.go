package profile

import (
	"fmt"
	"math"
	"time"

	"github.com/updraft-dev/updraft/profile/internal/histogram"
	"gonum.org/v1/gonum/stat/distuv"
)

// series is the bounded model of one resource of one function.
//
// It works in the manner of Google's Autopilot recommender (Rzadca et al.,
// EuroSys 2020): several candidate forecasters run side by side, each is
// charged what it would have cost over the recent history — the
// over-reservation plus a price per observation it failed to cover — and
// the cheapest one answers. Each candidate is a point prediction made at
// the start of every horizon (an hour by default) plus a margin; the
// margin is learnt from how far the observations of that horizon landed
// from the prediction, in units of the function's long-run mean usage,
// and is the one that minimised the cost over those errors. The price of
// an overrun is set per resource (a memory overrun is an OOM kill, a CPU
// overrun a delay), so the same errors give memory a wider margin.
//
// The point predictions:
//   - flat: the recent level (the observations smoothed over levelTau);
//   - pattern: the level projected by a damped trend and the daily pattern
//     (the mean of each hour of the day, once two days are seen) to its
//     peak in the window;
//   - lastPeak: the peak of the last horizon;
//   - dayPeak: the highest horizon peak of the last day;
//   - seasonalPeak: the peak of the last horizon or of the same window on
//     each of the last seasonDays days, whichever is higher.
//
// The windowed peaks are what the memory forecast rests on, as Autopilot's
// memory recommenders rest on peaks. Until enough errors are seen, a
// decaying histogram of the values themselves (the way VPA-style
// recommenders work) gives the forecast. Memory is fixed; each
// observation is O(1) (amortised over a horizon).
type series struct {
	n           int
	first, last time.Time
	price       float64       // overrun cost of this series' resource
	headroom    float64       // P95 is at least the point prediction times 1+headroom
	peakSpan    time.Duration // and the peak of this span times 1+headroom (0: none)

	// Welford running statistics over every observation, used while the
	// history is too short for the histograms to be trusted.
	mean, m2, max float64

	level, trend float64 // Holt level and trend; trend in units per second
	recent       float64 // level without trend: the observations smoothed over levelTau
	longMean     float64 // mean decaying over the half-life: the unit of errors

	hourMean [24]float64 // EWMA of observations in each UTC hour of the day
	hourN    [24]int32

	peaks peakRing // the peak of each horizon, the most recent ones

	anchor anchor              // predictions made at the start of the current horizon
	errs   [predictors]errDist // errors of each prediction against its anchor
	values histogram.Decaying  // the observations; created at the first positive one
	zeros  int                 // zero observations before values existed
}

// The point predictions.
const (
	flat         = iota // the recent level
	pattern             // level, damped trend and daily pattern, at their peak in the window
	lastPeak            // the peak of the last horizon
	dayPeak             // the highest horizon peak of the last day
	seasonalPeak        // the last horizon's peak or the same window's on recent days
	weekPeak            // the highest horizon peak held (up to seasonDays days)
	predictors
)

var predictorNames = [predictors]string{
	flat:         "recent level",
	pattern:      "level and trend",
	lastPeak:     "peak of the last horizon",
	dayPeak:      "highest horizon peak of the last day",
	seasonalPeak: "peak of the last horizon or of the same window on recent days",
	weekPeak:     "highest horizon peak of the last days",
}

// patternAdvantage is how much lower (as a factor) the pattern
// prediction's error cost must be before it is preferred, so that a trend
// or daily pattern is used only where the history clearly shows one.
const patternAdvantage = 0.9

// anchor is what the series predicted at the start of a horizon; the
// observations until end are scored against it, the way a reservation
// made at the start is held until end.
type anchor struct {
	end   time.Time
	scale float64
	point [predictors]float64
}

// modelParams are the tunables of every series, fixed by the Analyzer.
type modelParams struct {
	levelTau   time.Duration // smoothing time constant of the level
	trendTau   time.Duration // smoothing time constant of the trend
	horizon    time.Duration // the window forecasts are tuned for
	halfLife   time.Duration // decay of the histograms and of the long-run mean
	minSamples int           // below this, forecasts use the wide small-sample interval
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
		s.peaks.init(p.horizon)
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
	s.peaks.add(s.first, t, x)

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
	start := s.first.Add(k * p.horizon)
	s.anchor.end = start.Add(p.horizon)
	s.anchor.scale = s.scale()
	s.anchor.point = s.points(p, start, p.horizon)
}

// points returns every point prediction for [at, at+window).
func (s *series) points(p *modelParams, at time.Time, window time.Duration) [predictors]float64 {
	var out [predictors]float64
	out[flat] = s.recent
	out[pattern] = s.peak(p, at, window)
	out[lastPeak] = s.peaks.last(s.first, at)
	out[dayPeak] = s.peaks.maxBack(s.first, at, 24*time.Hour)
	out[seasonalPeak] = math.Max(out[lastPeak], s.peaks.seasonal(s.first, at, window))
	out[weekPeak] = s.peaks.maxBack(s.first, at, seasonDays*24*time.Hour)
	return out
}

// scale is the long-run mean, or the smallest positive number while that
// is zero.
func (s *series) scale() float64 {
	return math.Max(s.longMean, math.SmallestNonzeroFloat64)
}

func (s *series) addValue(p *modelParams, t time.Time, x float64) {
	if s.values.Buckets() == nil {
		if x <= 0 {
			s.zeros++
			return
		}
		s.values = newValueHistogram(x, p.halfLife)
		for range s.zeros {
			s.values.Add(0, 1, t)
		}
	}
	s.values.Add(x, 1, t)
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
// for [at, at+window) plus the margins learnt from its errors.
func (s *series) conditional(point float64, k int) (q50, q95, q99 float64) {
	unit := s.scale()
	e := &s.errs[k]
	margin, _ := e.reservation(s.price)
	q95 = math.Max(point+margin*unit, 0)
	if s.headroom > 0 {
		q95 = math.Max(q95, point*(1+s.headroom))
	}
	q50 = math.Min(math.Max(point+e.quantile(0.5)*unit, 0), q95)
	q99 = math.Max(point+e.quantile(0.99)*unit, q95)
	return q50, q95, q99
}

// forecast returns the p50, p95 and p99 demand over [at, at+window) and,
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
	case s.n < p.minSamples || s.values.Buckets() == nil && s.zeros == 0:
		q50, q95, q99 = s.smallSample()
		return q50, q95, q99, fmt.Sprintf("only %d observations (fewer than %d): wide small-sample interval", s.n, p.minSamples)
	case s.values.Buckets() == nil:
		return 0, 0, 0, fmt.Sprintf("%d observations, all zero", s.n)
	}
	if s.errs[flat].count >= minErrors*p.minSamples {
		best, costs := s.cheapest()
		points := s.points(p, at, window)
		q50, q95, q99 = s.conditional(points[best], best)
		if s.peakSpan > 0 {
			floor := s.peaks.maxBack(s.first, at, s.peakSpan) * (1 + s.headroom)
			q95 = math.Max(q95, floor)
			q99 = math.Max(q99, q95)
		}
		what := predictorNames[best]
		if best == pattern && s.seasonal() {
			what = "level, trend and daily pattern"
		}
		return q50, q95, q99, fmt.Sprintf("%s from %d observations, plus the margin that minimised over-reservation plus %.3g mean usages per overrun (error cost %.3g; the recent level's %.3g)",
			what, s.n, s.price, costs[best], costs[flat])
	}
	return s.values.Percentile(0.5), s.values.Percentile(0.95), s.values.Percentile(0.99),
		fmt.Sprintf("distribution of %d observations, decaying with a %v half-life", s.n, p.halfLife)
}

// cheapest returns the prediction whose errors cost least at the series'
// price, and every prediction's cost.
func (s *series) cheapest() (int, [predictors]float64) {
	var costs [predictors]float64
	for k := range s.errs {
		_, costs[k] = s.errs[k].reservation(s.price)
	}
	best := flat
	for k := range costs {
		c := costs[k]
		if k == pattern {
			c /= patternAdvantage
		}
		if c < costs[best] {
			best = k
		}
	}
	return best, costs
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
