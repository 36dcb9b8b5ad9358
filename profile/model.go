package profile

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// series is the bounded model of one resource of one function. It keeps
// two forecasters side by side and a running backtest of each:
//
//   - the marginal one: a decaying histogram of the values themselves, the
//     way VPA-style recommenders work;
//   - the conditional one: a level and damped trend smoothed over irregular
//     steps, the mean of each hour of the day (daily seasonality, once two
//     days are seen), and a decaying histogram of how far observations
//     landed from the forecast made about one horizon earlier.
//
// Every observation is scored against the P95 each forecaster gave about
// one horizon before (over-reservation relative to the mean, plus a
// penalty per overrun); forecasts come from the conditional forecaster
// when its decayed cost is less than half the marginal one's, so level,
// trend and seasonality are used where the history shows they clearly
// help. Memory is fixed; each observation is O(1).
type series struct {
	n           int
	first, last time.Time

	// Welford running statistics over every observation, used while the
	// history is too short for the histograms to be trusted.
	mean, m2, max float64

	level, trend float64 // trend in units per second
	longMean     float64 // mean decaying over the half-life

	hourMean [24]float64 // EWMA of observations in each UTC hour of the day
	hourN    [24]int32

	snaps    [snapshotSlots]snapshot // ring, spaced horizon/snapshotSlots apart
	snapNext int

	ratios      logHistogram // observed / conditional forecast one horizon earlier
	values      logHistogram // the observations; created at the first positive one
	zerosBefore int          // zero observations before values existed

	cost [2]float64 // decayed backtest cost of the marginal and conditional forecasters
}

const (
	marginal    = 0
	conditional = 1
)

// conditionalAdvantage is how much lower (as a factor) the conditional
// forecaster's backtest cost must be before it is preferred: on the
// shipped Bitbrains and Alibaba traces the value distribution is as good
// or better for most series, and switching on small differences only
// added slack.
const conditionalAdvantage = 0.5

const snapshotSlots = 4

// snapshot is the model's state at one instant: what it would have
// forecast from then.
type snapshot struct {
	at           time.Time
	level, trend float64
	reserve      [2]float64 // P95 of each forecaster at the time; NaN if it had none
}

// modelParams are the tunables of every series, fixed by the Analyzer.
type modelParams struct {
	levelTau    time.Duration // smoothing time constant of the level
	trendTau    time.Duration // smoothing time constant of the trend
	horizon     time.Duration // the window forecasts are tuned for
	halfLife    time.Duration // decay of histograms and backtest costs
	minSamples  int           // below this, forecasts use the wide small-sample interval
	overrunCost float64       // backtest penalty of one overrun, in means of over-reservation
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
		s.level, s.longMean, s.max = x, x, x
		s.ratios = newLogHistogram(ratioLowest, ratioGrowth, ratioBuckets)
	}
	s.n++
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
	s.max = math.Max(s.max, x)

	// Score and record how this point compares with what the model said
	// about one horizon ago, before the model learns from it.
	if old, ok := s.oldest(t); ok {
		s.ratios.add(p.halfLife, t, ratio(x, s.pointForecast(p, old.at, old.level, old.trend, t)))
		s.backtest(p, t, x, old)
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
	s.snapshot(p, t)
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

// backtest charges each forecaster for the reservation it made at old:
// what it over-reserved, in units of the long-run mean, and overrunCost
// for each overrun.
func (s *series) backtest(p *modelParams, t time.Time, x float64, old snapshot) {
	decay := math.Exp2(-t.Sub(s.last).Seconds() / p.halfLife.Seconds())
	scale := math.Max(s.longMean, 1e-12)
	for k, r := range old.reserve {
		if math.IsNaN(r) {
			continue
		}
		c := math.Max(r-x, 0) / scale
		if x > r {
			c += p.overrunCost
		}
		s.cost[k] = s.cost[k]*decay + c
	}
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

func (s *series) snapshot(p *modelParams, t time.Time) {
	prev := s.snaps[(s.snapNext+snapshotSlots-1)%snapshotSlots]
	if !prev.at.IsZero() && t.Sub(prev.at) < p.horizon/snapshotSlots {
		return
	}
	snap := snapshot{at: t, level: s.level, trend: s.trend, reserve: [2]float64{math.NaN(), math.NaN()}}
	if s.values.total > 0 {
		snap.reserve[marginal] = s.values.quantile(0.95)
	}
	if s.ratios.total > 0 {
		_, snap.reserve[conditional], _ = s.conditionalQuantiles(p, t, p.horizon)
	}
	s.snaps[s.snapNext] = snap
	s.snapNext = (s.snapNext + 1) % snapshotSlots
}

// oldest returns the oldest snapshot still in the ring, taken about one
// horizon before t.
func (s *series) oldest(t time.Time) (snapshot, bool) {
	old := s.snaps[s.snapNext]
	if old.at.IsZero() {
		old = s.snaps[0]
	}
	if old.at.IsZero() || !t.After(old.at) {
		return snapshot{}, false
	}
	return old, true
}

// pointForecast is what the model expects at t from a level and trend
// taken at from, with the daily pattern, never below refFloor of the
// long-run mean.
func (s *series) pointForecast(p *modelParams, from time.Time, level, trend float64, t time.Time) float64 {
	// The level follows observations with a lag of about levelTau, so it
	// stands for the hour of the day that long before from.
	v := project(p, level, trend, t.Sub(from).Seconds()) + s.seasonalShift(from.Add(-p.levelTau), t)
	return math.Max(v, refFloor*s.longMean)
}

// conditionalQuantiles scales the highest point forecast within
// [at, at+window] by the quantiles of the observed ratios.
func (s *series) conditionalQuantiles(p *modelParams, at time.Time, window time.Duration) (q50, q95, q99 float64) {
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
	peak = math.Min(peak, math.MaxFloat64)
	q50 = peak * s.ratios.quantile(0.50)
	q95 = math.Max(peak*s.ratios.quantile(0.95), q50)
	q99 = math.Max(peak*s.ratios.quantile(0.99), q95)
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
	if s.ratios.total > 0 && s.cost[conditional] < conditionalAdvantage*s.cost[marginal] {
		q50, q95, q99 = s.conditionalQuantiles(p, at, window)
		what := "level and trend"
		if s.seasonal() {
			what = "level, trend and daily pattern"
		}
		return q50, q95, q99, fmt.Sprintf("%s from %d observations (backtest cost %.3g against %.3g for the value distribution)",
			what, s.n, s.cost[conditional], s.cost[marginal])
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

func ratio(x, ref float64) float64 {
	switch {
	case ref <= 0 && x <= 0:
		return 1
	case ref <= 0:
		return ratioHighest
	default:
		return x / ref
	}
}

// refFloor keeps forecasts of a series that is idle now but busy on
// average from collapsing to zero, which would make every ratio to them
// unbounded: no forecast is below this share of the long-run mean.
const refFloor = 0.05

// project extrapolates a level by a damped trend: the trend's effect
// saturates after about one horizon, so a short climb is not projected
// for ever.
func project(p *modelParams, level, trend, ahead float64) float64 {
	tau := p.horizon.Seconds()
	return math.Max(level+trend*tau*(1-math.Exp(-ahead/tau)), 0)
}
