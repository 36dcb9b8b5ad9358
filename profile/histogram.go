package profile

import (
	"math"
	"time"

	"github.com/updraft-dev/updraft/profile/internal/histogram"
)

// The model's distributions are the shared decaying histogram
// (profile/internal/histogram), the one the VPA re-implementation in
// profile/trace uses too.

// modelEpsilon is the weight under which a bucket of the model's
// histograms counts as empty: far below any weight a sample can have, so
// nothing the model adds is ever dropped.
const modelEpsilon = 1e-250

// Values are kept on VPA-style exponential buckets scaled to the first
// positive value x seen: the first bucket is x/valueRange wide, each next
// one valueGrowth times wider, up to valueRange·x.
const (
	valueRange  = 1000.0
	valueGrowth = 1.10
)

func newValueHistogram(first float64, halfLife time.Duration) histogram.Decaying {
	var h histogram.Decaying
	b, err := histogram.NewExponential(first*valueRange, first/valueRange, valueGrowth)
	if err != nil { // first is too small or too large for finite buckets
		b = histogram.MustExponential(1, 1e-6, valueGrowth)
	}
	h.Init(b, halfLife, modelEpsilon)
	return h
}

// Forecast errors are kept in units of the series' long-run mean, on
// signed buckets about errUnit·errStep wide near zero and a share errStep
// of the error wide far from it, out to ±errRange.
var errBuckets = histogram.MustSigned(0.01, 0.08, 60)

// errDist is the decaying distribution of one prediction's errors.
type errDist struct {
	h     histogram.Decaying
	count int // errors added, not decayed
}

func (d *errDist) add(halfLife time.Duration, t time.Time, e float64) {
	if d.h.Buckets() == nil {
		d.h.Init(errBuckets, halfLife, modelEpsilon)
	}
	d.h.Add(e, 1, t)
	d.count++
}

// quantile returns the end of the bucket holding the q-quantile.
func (d *errDist) quantile(q float64) float64 {
	if d.h.Buckets() == nil {
		return 0
	}
	return d.h.Percentile(q)
}

// reservation returns the margin m (the end of a bucket) that minimises,
// over the errors seen, the over-reservation Σ(m − e) of the errors below
// m plus price for each error above it, and that minimum per unit of
// weight: the cost of forecasting with these errors.
func (d *errDist) reservation(price float64) (margin, cost float64) {
	h := &d.h
	if h.Buckets() == nil || h.IsEmpty() {
		return 0, 0
	}
	lo, hi := h.Range()
	total := h.Total()
	best, bestCost := hi, math.Inf(1)
	below, sumBelow := 0.0, 0.0 // weight and weight × error of the buckets up to i
	for i := lo; i <= hi; i++ {
		w := h.Weight(i)
		if w == 0 {
			continue // a cost minimum sits on an occupied bucket's end
		}
		below += w
		sumBelow += w * errBuckets.Centre(float64(i))
		m := errBuckets.Start(i + 1)
		c := m*below - sumBelow + price*math.Max(total-below, 0)
		if c < bestCost {
			best, bestCost = i, c
		}
	}
	return errBuckets.Start(best + 1), bestCost / total
}
