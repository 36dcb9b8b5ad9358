package profile

import (
	"math"
	"time"
)

// ratioHistogram is a decaying histogram of ratios (observed / forecast),
// log-spaced from ratioMin to ratioMax with a separate bucket for zero. New
// points weigh more than old ones by a factor of two per half-life, the way
// Kubernetes' VPA ages its usage histograms, so memory is fixed and adding
// a point is O(1).
type ratioHistogram struct {
	weights [ratioBuckets]float32
	zero    float64
	total   float64
	ref     time.Time // weights are relative to this instant
}

const (
	ratioMin     = 1.0 / 64
	ratioMax     = 64.0
	ratioGrowth  = 1.08
	ratioBuckets = 109 // ceil(ln(ratioMax/ratioMin)/ln(ratioGrowth)) + 1
)

var logRatioGrowth = math.Log(ratioGrowth)

func ratioBucket(r float64) int {
	if r <= ratioMin {
		return 0
	}
	i := int(math.Log(r/ratioMin) / logRatioGrowth)
	return min(i, ratioBuckets-1)
}

// ratioUpper is the upper bound of bucket i, what quantiles report.
func ratioUpper(i int) float64 {
	return ratioMin * math.Pow(ratioGrowth, float64(i+1))
}

func (h *ratioHistogram) add(p *modelParams, t time.Time, r float64) {
	if h.ref.IsZero() {
		h.ref = t
	}
	w := math.Exp2(t.Sub(h.ref).Seconds() / p.halfLife.Seconds())
	if w > 1e30 || w < 1e-30 {
		h.rebase(t, w)
		w = 1
	}
	if r <= 0 || math.IsNaN(r) {
		h.zero += w
	} else {
		h.weights[ratioBucket(r)] += float32(w)
	}
	h.total += w
}

// rebase rescales every weight so that weights are relative to t.
func (h *ratioHistogram) rebase(t time.Time, w float64) {
	f := 1 / w
	for i := range h.weights {
		h.weights[i] = float32(float64(h.weights[i]) * f)
	}
	h.zero *= f
	h.total *= f
	h.ref = t
}

// quantile returns the smallest bucket upper bound below which at least q
// of the weight lies.
func (h *ratioHistogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 1
	}
	target := q * h.total
	acc := h.zero
	if acc >= target {
		return 0
	}
	for i, w := range h.weights {
		acc += float64(w)
		if acc >= target {
			return ratioUpper(i)
		}
	}
	return ratioMax
}
