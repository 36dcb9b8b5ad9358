package trace

import (
	"context"
	"math"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// VPA is the baseline [Forecaster]: a recommender of the kind Kubernetes'
// Vertical Pod Autoscaler uses. Per resource it keeps a histogram with
// exponentially growing buckets (5% wider each) whose weights decay with a
// 24-hour half-life, and reserves its 90th percentile plus a 15% margin.
// The first bucket ends at a thousandth of the first positive value seen,
// so the geometric buckets cover every scale a trace uses.
type VPA struct {
	Percentile float64       // default 0.9
	Margin     float64       // default 0.15
	HalfLife   time.Duration // default 24h

	hist map[hal.Resource]*vpaHistogram
}

type vpaHistogram struct {
	first   float64 // upper bound of bucket 0
	weights []float64
	total   float64
	ref     time.Time
}

const vpaGrowth = 1.05

func (v *VPA) defaults() {
	if v.Percentile == 0 {
		v.Percentile = 0.9
	}
	if v.Margin == 0 {
		v.Margin = 0.15
	}
	if v.HalfLife == 0 {
		v.HalfLife = 24 * time.Hour
	}
	if v.hist == nil {
		v.hist = make(map[hal.Resource]*vpaHistogram)
	}
}

// Observe implements [Forecaster].
func (v *VPA) Observe(p Point) {
	v.defaults()
	for r, x := range p.Usage {
		h := v.hist[r]
		if h == nil {
			if x <= 0 {
				continue // wait for a positive value to scale the buckets
			}
			h = &vpaHistogram{first: x / 1000, ref: p.Time}
			v.hist[r] = h
		}
		w := math.Exp2(p.Time.Sub(h.ref).Seconds() / v.HalfLife.Seconds())
		if w > 1e100 {
			for i := range h.weights {
				h.weights[i] /= w
			}
			h.total /= w
			h.ref, w = p.Time, 1
		}
		i := h.bucket(x)
		for len(h.weights) <= i {
			h.weights = append(h.weights, 0)
		}
		h.weights[i] += w
		h.total += w
	}
}

func (h *vpaHistogram) bucket(x float64) int {
	if x <= h.first {
		return 0
	}
	return int(math.Log(x/h.first)/math.Log(vpaGrowth)) + 1
}

func (h *vpaHistogram) upper(i int) float64 { return h.first * math.Pow(vpaGrowth, float64(i)) }

// Reserve implements [Forecaster].
func (v *VPA) Reserve(_ context.Context, _ time.Time, _ time.Duration) (hal.Vector, error) {
	v.defaults()
	out := hal.Vector{}
	for r, h := range v.hist {
		target := v.Percentile * h.total
		acc := 0.0
		q := h.upper(len(h.weights) - 1)
		for i, w := range h.weights {
			acc += w
			if acc >= target {
				q = h.upper(i)
				break
			}
		}
		out[r] = q * (1 + v.Margin)
	}
	return out, nil
}
