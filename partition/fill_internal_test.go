package partition

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortByLevelIsAStableSort compares the radix sort with the standard
// library's stable sort on inputs with many equal levels, zeros, tiny and
// huge levels, and infinities.
func TestSortByLevelIsAStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specials := []float64{0, math.SmallestNonzeroFloat64, 1, 1e300, math.Inf(1), 0.5}
	for _, n := range []int{0, 1, 255, 256, 257, 5000} {
		events := make([]event, n)
		for i := range events {
			at := rng.Float64() * 10
			switch rng.IntN(4) {
			case 0:
				at = specials[rng.IntN(len(specials))]
			case 1:
				at = float64(rng.IntN(5)) // many ties
			}
			events[i] = event{at: at, order: i}
		}
		want := slices.Clone(events)
		slices.SortStableFunc(want, func(a, b event) int { return cmp.Compare(a.at, b.at) })
		if got := sortByLevel(events, nil); !slices.Equal(want, got) {
			t.Errorf("n=%d: radix order differs from a stable sort", n)
		}
	}
}
