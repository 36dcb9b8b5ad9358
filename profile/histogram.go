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

// Histogram shape of raw values: from a thousandth to a thousand times the
// first positive value seen, in 10% steps.
const (
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

// errHistogram is a decaying histogram of forecast errors in units of the
// mean usage, negative or positive. Buckets are spaced evenly in
// asinh(e/errUnit): about errUnit·errStep wide near zero and errStep (8%)
// of the error wide far from it, out to ±errRange; errors beyond count in
// the outermost buckets. Weights age like [logHistogram]'s; memory is
// fixed and adding a point is O(1).
type errHistogram struct {
	weights [errBuckets]float32
	total   float64 // sum of weights
	count   int     // points added, not decayed
	ref     time.Time
}

const (
	errUnit    = 0.01
	errStep    = 0.08
	errRange   = 60.0
	errHalf    = 118 // ceil(asinh(errRange/errUnit)/errStep)
	errBuckets = 2*errHalf + 1
)

func errBucket(e float64) int {
	if math.IsNaN(e) {
		return errBuckets - 1
	}
	i := math.Round(math.Asinh(e/errUnit)/errStep) + errHalf
	return int(math.Min(math.Max(i, 0), errBuckets-1))
}

// errAt is the error at bucket position i (i+0.5 is bucket i's upper
// edge).
func errAt(i float64) float64 { return errUnit * math.Sinh((i-errHalf)*errStep) }

func (h *errHistogram) add(halfLife time.Duration, t time.Time, e float64) {
	if h.ref.IsZero() {
		h.ref = t
	}
	w := math.Exp2(t.Sub(h.ref).Seconds() / halfLife.Seconds())
	if w > 1e30 || w < 1e-30 {
		f := 1 / w
		for i := range h.weights {
			h.weights[i] = float32(float64(h.weights[i]) * f)
		}
		h.total *= f
		h.ref, w = t, 1
	}
	i := errBucket(e)
	h.weights[i] += float32(w)
	h.total += w
	h.count++
}

// quantile returns the upper edge of the bucket holding quantile q.
func (h *errHistogram) quantile(q float64) float64 {
	target := q * h.total
	acc := 0.0
	for i, w := range h.weights {
		acc += float64(w)
		if acc >= target && w > 0 {
			return errAt(float64(i) + 0.5)
		}
	}
	return errAt(errBuckets - 0.5)
}

// reservation returns the margin m (the upper edge of a bucket) that
// minimises, over the errors seen, the over-reservation Σ(m − e) of the
// errors below m plus overrun for each error above it, and that minimum
// per unit of weight: the cost of forecasting with these errors.
func (h *errHistogram) reservation(overrun float64) (margin, cost float64) {
	if h.total == 0 {
		return 0, 0
	}
	best, bestCost := errBuckets-1, math.Inf(1)
	below, sumBelow := 0.0, 0.0 // weight and weight × error of the buckets up to i
	for i, w := range h.weights {
		if w == 0 {
			continue // a cost minimum sits on an occupied bucket's upper edge
		}
		below += float64(w)
		sumBelow += float64(w) * errAt(float64(i))
		m := errAt(float64(i) + 0.5)
		c := m*below - sumBelow + overrun*math.Max(h.total-below, 0)
		if c < bestCost {
			best, bestCost = i, c
		}
	}
	return errAt(float64(best) + 0.5), bestCost / h.total
}
