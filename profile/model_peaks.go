package profile

import (
	"math"
	"time"
)

// seasonDays is how many past days the seasonal peak looks back on.
const seasonDays = 7

// maxSeasonalPeriod is the most horizons per day for which the seasonal
// peak is kept (a horizon of 30 minutes or more); shorter horizons keep
// the last maxSeasonalPeriod peaks only.
const maxSeasonalPeriod = 48

// peakRing keeps the peak of each of the most recent horizons, numbered
// from the series' first observation. Memory is fixed at init.
type peakRing struct {
	horizon time.Duration
	period  int       // horizons per day, 0 when the seasonal peak is not kept
	peaks   []float64 // ring indexed by horizon number; NaN: no observation
	newest  int64     // number of the newest horizon held
}

func (r *peakRing) init(horizon time.Duration) {
	r.horizon = horizon
	n := maxSeasonalPeriod
	if day := 24 * time.Hour; horizon <= day && day%horizon == 0 && int(day/horizon) <= maxSeasonalPeriod {
		r.period = int(day / horizon)
		n = r.period * seasonDays
	}
	r.peaks = make([]float64, n+1)
	for i := range r.peaks {
		r.peaks[i] = math.NaN()
	}
}

func (r *peakRing) index(first, t time.Time) int64 {
	d := t.Sub(first)
	k := int64(d / r.horizon)
	if d < 0 && d%r.horizon != 0 {
		k--
	}
	return k
}

func (r *peakRing) slot(k int64) *float64 {
	n := int64(len(r.peaks))
	return &r.peaks[((k%n)+n)%n]
}

// held reports whether horizon k is in the ring.
func (r *peakRing) held(k int64) bool {
	return k <= r.newest && r.newest-k < int64(len(r.peaks))
}

func (r *peakRing) add(first, t time.Time, x float64) {
	k := r.index(first, t)
	switch {
	case k > r.newest:
		for j := max(r.newest+1, k-int64(len(r.peaks))+1); j <= k; j++ {
			*r.slot(j) = math.NaN()
		}
		r.newest = k
		*r.slot(k) = x
	case r.held(k):
		if p := r.slot(k); math.IsNaN(*p) || x > *p {
			*p = x
		}
	}
}

// maxOf returns the largest peak among horizons lo..hi that are held, and
// whether there was one.
func (r *peakRing) maxOf(lo, hi int64) (float64, bool) {
	best, ok := 0.0, false
	for k := max(lo, r.newest-int64(len(r.peaks))+1); k <= min(hi, r.newest); k++ {
		if v := *r.slot(k); !math.IsNaN(v) && (!ok || v > best) {
			best, ok = v, true
		}
	}
	return best, ok
}

// last returns the peak of the horizon before at's and of at's own
// (observed so far), or the newest peak held if neither had an
// observation.
func (r *peakRing) last(first, at time.Time) float64 {
	k := r.index(first, at)
	if v, ok := r.maxOf(k-1, k); ok {
		return v
	}
	v, _ := r.maxOf(r.newest-int64(len(r.peaks))+1, min(k, r.newest))
	return v
}

// maxBack returns the highest peak of the horizons within span before at
// (and of at's own), or last's answer if none had an observation.
func (r *peakRing) maxBack(first, at time.Time, span time.Duration) float64 {
	k := r.index(first, at)
	if v, ok := r.maxOf(k-int64(span/r.horizon), k); ok {
		return v
	}
	return r.last(first, at)
}

// seasonal returns the highest peak of the horizons covering
// [at, at+window) on each of the last seasonDays days, or 0 when none is
// held.
func (r *peakRing) seasonal(first, at time.Time, window time.Duration) float64 {
	if r.period == 0 {
		return 0
	}
	k := r.index(first, at)
	n := max(int64((window+r.horizon-1)/r.horizon), 1)
	best := 0.0
	for d := int64(1); d <= seasonDays; d++ {
		if v, ok := r.maxOf(k-d*int64(r.period), k-d*int64(r.period)+n-1); ok {
			best = math.Max(best, v)
		}
	}
	return best
}
