package partition

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestExactSumIsExactAndOrderFree compares exactSum with big.Float
// arithmetic at a precision wide enough to be exact, on values of mixed
// magnitude and sign, in two orders.
func TestExactSumIsExactAndOrderFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	specials := []float64{0, math.SmallestNonzeroFloat64, 1e-300, 0.1, 1, 1 << 52, 1e300, math.MaxFloat64 / 4}
	for n := range 300 {
		xs := make([]float64, n)
		for i := range xs {
			switch rng.IntN(3) {
			case 0:
				xs[i] = specials[rng.IntN(len(specials))]
			case 1:
				xs[i] = rng.Float64() * math.Pow(2, float64(rng.IntN(200)-100))
			default:
				xs[i] = rng.NormFloat64()
			}
			if rng.IntN(4) == 0 {
				xs[i] = -xs[i]
			}
		}
		want := new(big.Float).SetPrec(4096)
		var fwd, back exactSum
		for i, x := range xs {
			want.Add(want, new(big.Float).SetPrec(4096).SetFloat64(x))
			fwd.add(x)
			back.add(xs[len(xs)-1-i])
		}
		w, _ := want.Float64()
		if got := fwd.float64(); got != w {
			t.Fatalf("n=%d: sum %v, want %v", n, got, w)
		}
		if got := back.float64(); got != w {
			t.Fatalf("n=%d: reversed sum %v, want %v", n, got, w)
		}
	}
	var s exactSum
	s.add(1)
	s.carry()
	if got := s.float64(); got != 1 {
		t.Fatalf("after carry: %v, want 1", got)
	}
}
