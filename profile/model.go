package profile

import (
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// series is the bounded model of one resource of one function: a level and
// trend smoothed over irregular steps, a daily seasonal index, and a
// decaying histogram of how far observations landed from the forecast made
// one horizon earlier. Memory is fixed; each observation is O(1).
type series struct {
	n           int
	first, last time.Time

	// Welford running statistics over every observation, used while the
	// history is too short for the histogram to be trusted.
	mean, m2, max float64

	level, trend float64 // trend in units per second

	seasonal  [24]float64 // EWMA of value/level per UTC hour of day
	seasonalN [24]int32

	snaps    [snapshotSlots]levelSnapshot // ring, spaced horizon/snapshotSlots apart
	snapNext int

	resid ratioHistogram
}

const snapshotSlots = 4

type levelSnapshot struct {
	at           time.Time
	level, trend float64 // deseasoned level and its trend per second
}

// modelParams are the tunables of every series, fixed by the Analyzer.
type modelParams struct {
	levelTau   time.Duration // smoothing time constant of the level
	trendTau   time.Duration // smoothing time constant of the trend
	horizon    time.Duration // the window forecasts are tuned for
	halfLife   time.Duration // decay of the residual histogram
	minSamples int           // below this, forecasts use the wide small-sample interval
}

func (s *series) observe(p *modelParams, t time.Time, x float64) {
	if s.n == 0 {
		s.first, s.last = t, t
		s.level = x
		s.max = x
	}
	s.n++
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
	if x > s.max {
		s.max = x
	}

	season := s.seasonIndex(t)
	// Record how this point compares with what the model said one
	// horizon ago, before the level learns from it.
	if ref, ok := s.reference(p, t); ok {
		s.resid.add(p, t, ratio(x, ref))
	}

	dt := t.Sub(s.last).Seconds()
	if dt < 0 {
		dt = 0 // out-of-order samples update the level but not the trend
	}
	if s.n > 1 {
		deseasoned := x / season
		predicted := s.level + s.trend*dt
		a := 1 - math.Exp(-dt/p.levelTau.Seconds())
		if dt == 0 {
			a = 1 / float64(min(s.n, 8)) // several points at one instant: average them
		}
		newLevel := predicted + a*(deseasoned-predicted)
		if dt > 0 {
			b := 1 - math.Exp(-dt/p.trendTau.Seconds())
			s.trend += b * ((newLevel-s.level)/dt - s.trend)
		}
		s.level = math.Max(newLevel, 0)
	}
	if t.After(s.last) {
		s.last = t
	}

	if s.level > 0 {
		h := t.UTC().Hour()
		r := x / s.level
		if s.seasonalN[h] == 0 {
			s.seasonal[h] = r
		} else {
			s.seasonal[h] += 0.25 * (r - s.seasonal[h])
		}
		s.seasonalN[h]++
	}
	s.snapshot(p, t)
}

// seasonIndex returns the daily seasonal index for t's hour, or 1 while the
// history is too short (under two days) to show a daily pattern.
func (s *series) seasonIndex(t time.Time) float64 {
	if s.n == 0 || s.last.Sub(s.first) < 48*time.Hour {
		return 1
	}
	h := t.UTC().Hour()
	if s.seasonalN[h] < 2 || s.seasonal[h] <= 0 {
		return 1
	}
	return s.seasonal[h]
}

func (s *series) snapshot(p *modelParams, t time.Time) {
	prev := s.snaps[(s.snapNext+snapshotSlots-1)%snapshotSlots]
	if !prev.at.IsZero() && t.Sub(prev.at) < p.horizon/snapshotSlots {
		return
	}
	s.snaps[s.snapNext] = levelSnapshot{at: t, level: s.level, trend: s.trend}
	s.snapNext = (s.snapNext + 1) % snapshotSlots
}

// reference is the forecast the model would have made for t from its state
// about one horizon earlier (the oldest snapshot still in the ring).
func (s *series) reference(p *modelParams, t time.Time) (float64, bool) {
	old := s.snaps[s.snapNext]
	if old.at.IsZero() {
		old = s.snaps[0]
	}
	if old.at.IsZero() || !t.After(old.at) {
		return 0, false
	}
	ahead := t.Sub(old.at).Seconds()
	ref := math.Max(old.level+old.trend*ahead, 0) * s.seasonIndex(t)
	return ref, true
}

// quantiles forecasts the p50, p95 and p99 demand over [at, at+window].
func (s *series) quantiles(p *modelParams, at time.Time, window time.Duration) (q50, q95, q99 float64) {
	if s.n == 0 {
		return 0, 0, 0
	}
	if s.n < p.minSamples || s.resid.total == 0 {
		return s.smallSample()
	}
	// The highest point forecast within the window, across the seasonal
	// hours it touches; quantiles then scale it by the observed ratios.
	peak := 0.0
	steps := int(window/time.Hour) + 1
	for i := 0; i <= steps; i++ {
		dt := time.Duration(float64(window) * float64(i) / float64(steps))
		t := at.Add(dt)
		v := math.Max(s.level+s.trend*dt.Seconds(), 0) * s.seasonIndex(t)
		peak = math.Max(peak, v)
	}
	q50 = peak * s.resid.quantile(0.50)
	q95 = peak * s.resid.quantile(0.95)
	q99 = peak * s.resid.quantile(0.99)
	return q50, math.Max(q95, q50), math.Max(q99, math.Max(q95, q50))
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
	q50 = s.mean
	q95 = math.Max(s.mean+tdist.Quantile(0.95)*spread, s.max)
	q99 = math.Max(s.mean+tdist.Quantile(0.99)*spread, q95)
	return math.Max(q50, 0), q95, q99
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
		return ratioMax
	default:
		return x / ref
	}
}
