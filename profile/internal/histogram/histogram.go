// Package histogram is the one decaying histogram of the profile tree: the
// profile model keeps its value and forecast-error distributions in it, and
// profile/trace's re-implementation of the Kubernetes VPA recommender keeps
// its CPU and memory-peak distributions in it.
//
// It lives under profile/internal because exactly those two packages need
// it and no other package of the module should: it is not part of any API.
//
// The semantics follow the VPA recommender's histograms
// (kubernetes/autoscaler, vertical-pod-autoscaler/pkg/recommender/util:
// histogram.go, decaying_histogram.go, histogram_options.go), so the
// re-implementation is faithful by construction:
//
//   - a sample of weight w added at time t weighs w·2^((t−ref)/halfLife),
//     where ref is a multiple of the half-life; when an exponent would pass
//     100 half-lives, ref moves forward and every weight is rescaled, which
//     changes no percentile;
//   - a bucket whose weight is below Epsilon counts as empty when the first
//     and last non-empty buckets are tracked;
//   - [Decaying.Percentile] returns the end of the bucket in which the
//     cumulative weight reaches the asked share (the start of the last
//     bucket, which has no end), 0 when the histogram is empty.
//
// A Decaying is not safe for concurrent use; its owner guards it.
package histogram

import (
	"math"
	"time"
)

// maxDecayExponent is how many half-lives past the reference time a sample
// may be before the reference moves forward (decaying_histogram.go's
// maxDecayExponent).
const maxDecayExponent = 100

// Decaying is a histogram over a fixed bucketing whose weights decay with a
// half-life: a sample one half-life older than another counts half as
// much. A half-life of zero means no decay. Memory is fixed at creation;
// adding a sample is O(1).
type Decaying struct {
	buckets  Buckets
	halfLife time.Duration
	epsilon  float64

	weights  []float64
	total    float64
	min, max int       // first and last bucket holding at least epsilon
	ref      time.Time // weights are relative to this instant
}

// New returns an empty histogram over b. Buckets whose weight is below
// epsilon count as empty; halfLife ≤ 0 means weights never decay.
func New(b Buckets, halfLife time.Duration, epsilon float64) *Decaying {
	h := &Decaying{}
	h.Init(b, halfLife, epsilon)
	return h
}

// Init makes h an empty histogram over b, for owners that embed a
// Decaying by value; see [New].
func (h *Decaying) Init(b Buckets, halfLife time.Duration, epsilon float64) {
	*h = Decaying{buckets: b, halfLife: halfLife, epsilon: epsilon, weights: make([]float64, b.Len()), min: b.Len() - 1}
}

// Buckets returns the bucketing h was made with.
func (h *Decaying) Buckets() Buckets { return h.buckets }

// Add adds a sample of value x and weight w (≥ 0) taken at t.
func (h *Decaying) Add(x, w float64, t time.Time) {
	w *= h.decayFactor(t)
	i := h.buckets.Find(x)
	h.weights[i] += w
	h.total += w
	if i < h.min && h.weights[i] >= h.epsilon {
		h.min = i
	}
	if i > h.max && h.weights[i] >= h.epsilon {
		h.max = i
	}
}

// Subtract removes a sample added earlier with the same value, weight and
// time. Weights that would fall below epsilon become zero.
func (h *Decaying) Subtract(x, w float64, t time.Time) {
	w *= h.decayFactor(t)
	i := h.buckets.Find(x)
	h.total = subtract(h.total, w, h.epsilon)
	h.weights[i] = subtract(h.weights[i], w, h.epsilon)
	h.updateMinMax()
}

func subtract(v, sub, epsilon float64) float64 {
	v -= sub
	if v < epsilon {
		return 0
	}
	return v
}

// IsEmpty reports whether no bucket holds at least epsilon.
func (h *Decaying) IsEmpty() bool { return h.weights[h.min] < h.epsilon }

// Total returns the sum of the weights, relative to the current reference
// time (only ratios of weights mean anything).
func (h *Decaying) Total() float64 { return h.total }

// Percentile returns the end of the bucket in which the cumulative weight
// reaches p·Total (the start of the last bucket if it is that one), or 0
// when the histogram is empty. p is a share: 0.9 is the 90th percentile.
func (h *Decaying) Percentile(p float64) float64 {
	if h.IsEmpty() {
		return 0
	}
	threshold := p * h.total
	partial := 0.0
	i := h.min
	for ; i < h.max; i++ {
		partial += h.weights[i]
		if partial >= threshold {
			break
		}
	}
	if i < h.buckets.Len()-1 {
		return h.buckets.Start(i + 1)
	}
	return h.buckets.Start(i)
}

// Range returns the first and last non-empty buckets; lo > hi when the
// histogram is empty.
func (h *Decaying) Range() (lo, hi int) {
	if h.IsEmpty() {
		return 1, 0
	}
	return h.min, h.max
}

// Weight returns the weight of bucket i, on the scale of [Decaying.Total].
func (h *Decaying) Weight(i int) float64 { return h.weights[i] }

// decayFactor returns 2^((t−ref)/halfLife), first moving ref forward if t
// is more than maxDecayExponent half-lives past it.
func (h *Decaying) decayFactor(t time.Time) float64 {
	if h.halfLife <= 0 {
		return 1
	}
	if h.ref.IsZero() || float64(t.Sub(h.ref)) > maxDecayExponent*float64(h.halfLife) {
		h.shiftReference(t)
	}
	return math.Exp2(float64(t.Sub(h.ref)) / float64(h.halfLife))
}

// shiftReference moves ref to t rounded to a multiple of the half-life and
// rescales every weight to match.
func (h *Decaying) shiftReference(t time.Time) {
	next := t.Round(h.halfLife)
	if !h.ref.IsZero() {
		exponent := math.Floor(float64(h.ref.Sub(next))/float64(h.halfLife) + 0.5)
		h.scale(math.Ldexp(1, int(exponent)))
	}
	h.ref = next
}

// scale multiplies every weight by f ≥ 0, which changes no percentile.
func (h *Decaying) scale(f float64) {
	for i := range h.weights {
		h.weights[i] *= f
	}
	h.total *= f
	h.updateMinMax()
}

func (h *Decaying) updateMinMax() {
	last := len(h.weights) - 1
	for h.weights[h.min] < h.epsilon && h.min < last {
		h.min++
	}
	for h.weights[h.max] < h.epsilon && h.max > 0 {
		h.max--
	}
}
