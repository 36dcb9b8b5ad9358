package histogram

import (
	"errors"
	"math"
)

// Buckets is a bucketing scheme: Len buckets, bucket i holding the values
// from Start(i) up to Start(i+1). Find clamps values beyond either end to
// the first or last bucket.
type Buckets interface {
	Len() int
	Find(x float64) int
	Start(i int) float64
}

// Exponential is the VPA recommender's exponential bucketing
// (histogram_options.go, NewExponentialHistogramOptions): bucket 0 covers
// [0, first), bucket n is first·ratioⁿ wide, so bucket n ≥ 1 starts at
// first·(ratioⁿ − 1)/(ratio − 1), and the last bucket starts at or above
// max.
type Exponential struct {
	n            int
	first, ratio float64
}

// NewExponential returns the bucketing with the given first bucket size,
// growth ratio and largest value; it needs max > 0, first > 0 and
// ratio > 1.
func NewExponential(max, first, ratio float64) (Exponential, error) {
	if !(max > 0) || !(first > 0) || !(ratio > 1) || math.IsInf(max, 0) || math.IsInf(ratio, 0) {
		return Exponential{}, errors.New("histogram: exponential buckets need max > 0, first > 0 and ratio > 1, all finite")
	}
	n := int(math.Ceil(math.Log(max*(ratio-1)/first+1)/math.Log(ratio))) + 1
	if n < 2 || n > 1<<20 {
		return Exponential{}, errors.New("histogram: exponential buckets: max/first gives too many buckets")
	}
	return Exponential{n: n, first: first, ratio: ratio}, nil
}

// MustExponential is [NewExponential] for constant arguments; it panics on
// an error.
func MustExponential(max, first, ratio float64) Exponential {
	e, err := NewExponential(max, first, ratio)
	if err != nil {
		panic(err)
	}
	return e
}

// Len implements [Buckets].
func (e Exponential) Len() int { return e.n }

// Find implements [Buckets]: floor(log_ratio(x·(ratio−1)/first + 1)).
func (e Exponential) Find(x float64) int {
	if !(x >= e.first) { // also NaN
		return 0
	}
	f := math.Log(x*(e.ratio-1)/e.first+1) / math.Log(e.ratio)
	if !(f < float64(e.n-1)) {
		return e.n - 1
	}
	return int(f)
}

// Start implements [Buckets].
func (e Exponential) Start(i int) float64 {
	if i <= 0 {
		return 0
	}
	return e.first * (math.Pow(e.ratio, float64(i)) - 1) / (e.ratio - 1)
}

// Signed buckets values of either sign, spaced evenly in asinh(x/unit):
// about unit·step wide near zero and a share step of the value wide far
// from it, out to ±max; values beyond count in the outermost buckets.
// Bucket i is centred on unit·sinh((i−half)·step).
type Signed struct {
	unit, step float64
	half       int
}

// NewSigned returns signed bucketing with the given resolution near zero
// (unit), relative width far from it (step) and range (±max).
func NewSigned(unit, step, max float64) (Signed, error) {
	if !(unit > 0) || !(step > 0) || !(max > unit) || math.IsInf(max, 0) {
		return Signed{}, errors.New("histogram: signed buckets need unit > 0, step > 0 and a finite max > unit")
	}
	half := int(math.Ceil(math.Asinh(max/unit) / step))
	if half > 1<<20 {
		return Signed{}, errors.New("histogram: signed buckets: max/unit and step give too many buckets")
	}
	return Signed{unit: unit, step: step, half: half}, nil
}

// MustSigned is [NewSigned] for constant arguments; it panics on an error.
func MustSigned(unit, step, max float64) Signed {
	s, err := NewSigned(unit, step, max)
	if err != nil {
		panic(err)
	}
	return s
}

// Len implements [Buckets].
func (s Signed) Len() int { return 2*s.half + 1 }

// Find implements [Buckets]; NaN counts in the last bucket.
func (s Signed) Find(x float64) int {
	if math.IsNaN(x) {
		return s.Len() - 1
	}
	i := math.Round(math.Asinh(x/s.unit)/s.step) + float64(s.half)
	return int(math.Min(math.Max(i, 0), float64(s.Len()-1)))
}

// Start implements [Buckets].
func (s Signed) Start(i int) float64 { return s.Centre(float64(i) - 0.5) }

// Centre returns the centre of bucket position i (fractional positions
// interpolate in asinh space).
func (s Signed) Centre(i float64) float64 {
	return s.unit * math.Sinh((i-float64(s.half))*s.step)
}
