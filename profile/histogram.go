package profile

import (
	"math"
	"time"
)

// logHistogram is a decaying histogram of positive values, log-spaced: the
// first bucket ends at lowest, each next one is growth times wider, values
// beyond the last bucket count in it, and zero (or negative) values have a
// bucket of their own. New points weigh more than old ones by a factor of
// two per half-life, the way Kubernetes' VPA ages its usage histograms, so
// memory is fixed and adding a point is O(1).
type logHistogram struct {
	lowest  float64
	logGrow float64
	weights []float32
	zero    float64
	total   float64
	ref     time.Time // weights are relative to this instant
}

func newLogHistogram(lowest, growth float64, buckets int) logHistogram {
	return logHistogram{lowest: lowest, logGrow: math.Log(growth), weights: make([]float32, buckets)}
}

// Histogram shapes. Ratios of observed to forecast run from 1/64 to 64 in
// 8% steps; raw values from a thousandth to a thousand times the first
// positive value seen, in 10% steps.
const (
	ratioLowest     = 1.0 / 64
	ratioHighest    = 64.0
	ratioGrowth     = 1.08
	ratioBuckets    = 109 // ceil(ln(ratioHighest/ratioLowest)/ln(ratioGrowth)) + 1
	valueRange      = 1000.0
	valueGrowth     = 1.10
	valueBucketsLen = 146 // ceil(ln(valueRange²)/ln(valueGrowth)) + 1
)

func (h *logHistogram) bucket(x float64) int {
	if x <= h.lowest {
		return 0
	}
	f := math.Log(x/h.lowest)/h.logGrow + 1
	if !(f < float64(len(h.weights)-1)) { // also catches +Inf and NaN from an overflowing ratio
		return len(h.weights) - 1
	}
	return int(f)
}

// upper is the upper bound of bucket i, never infinite (values near the
// largest float64 would otherwise overflow it).
func (h *logHistogram) upper(i int) float64 {
	return math.Min(h.lowest*math.Exp(float64(i)*h.logGrow), math.MaxFloat64)
}

func (h *logHistogram) add(halfLife time.Duration, t time.Time, x float64) {
	if h.ref.IsZero() {
		h.ref = t
	}
	w := math.Exp2(t.Sub(h.ref).Seconds() / halfLife.Seconds())
	if w > 1e30 || w < 1e-30 {
		h.rebase(t, w)
		w = 1
	}
	if x <= 0 || math.IsNaN(x) {
		h.zero += w
	} else {
		h.weights[h.bucket(x)] += float32(w)
	}
	h.total += w
}

// rebase rescales every weight so that weights are relative to t.
func (h *logHistogram) rebase(t time.Time, w float64) {
	f := 1 / w
	for i := range h.weights {
		h.weights[i] = float32(float64(h.weights[i]) * f)
	}
	h.zero *= f
	h.total *= f
	h.ref = t
}

// quantile returns the value below which q of the weight lies,
// interpolated inside the bucket that holds it (0 if the zero bucket
// holds it).
func (h *logHistogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	target := q * h.total
	acc := h.zero
	if acc >= target {
		return 0
	}
	for i, w := range h.weights {
		if w == 0 {
			continue
		}
		if acc+float64(w) >= target {
			// Interpolate inside the bucket, geometrically, so a quantile
			// is not rounded up to the bucket's upper bound.
			lo := 0.0
			if i > 0 {
				lo = h.upper(i - 1)
			}
			f := math.Min(math.Max((target-acc)/float64(w), 0), 1)
			if lo == 0 {
				return f * h.upper(i)
			}
			return math.Min(lo*math.Exp(f*h.logGrow), math.MaxFloat64)
		}
		acc += float64(w)
	}
	return h.upper(len(h.weights) - 1)
}
