package partition

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/updraft-dev/updraft/hal"
)

// TestParallelPlanEqualsSequential plans inputs large enough to be split
// among goroutines, once with one worker and once with several, and
// requires the same plan, explanations and errors: chunking must not
// show.
func TestParallelPlanEqualsSequential(t *testing.T) {
	n := 5*parallelMin + 17
	rng := rand.New(rand.NewPCG(7, 11))
	demands := make([]Demand, n)
	total := hal.Vector{}
	for i := range demands {
		peak := hal.Vector{hal.CPU: 0.1 + rng.Float64()*2, hal.Memory: float64(1<<20) * (1 + rng.Float64()*16)}
		demands[i] = Demand{
			Function: fmt.Sprintf("f%06d", rng.IntN(1_000_000)*1_000+i%1_000), // shuffled names
			Critical: i%17 == 0,
			Peak:     peak,
			Expected: peak.Scale(0.2 + rng.Float64()*0.6),
			Weight:   float64(rng.IntN(4)), // 0 means 1
		}
		total = total.Add(peak)
	}
	seen := map[string]bool{}
	for i := range demands {
		for seen[demands[i].Function] {
			demands[i].Function += "x"
		}
		seen[demands[i].Function] = true
	}
	capacity := total.Scale(0.5)

	planners := func(opts Options) (one, many *Planner) {
		opts.Workers = 1
		one, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.Workers = 4
		many, err = New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return one, many
	}

	t.Run("plan", func(t *testing.T) {
		one, many := planners(Options{Granularity: hal.Vector{hal.Memory: 4096}})
		want, err := one.Plan(context.Background(), capacity, demands)
		if err != nil {
			t.Fatal(err)
		}
		got, err := many.Plan(context.Background(), capacity, demands)
		if err != nil {
			t.Fatal(err)
		}
		if chunks(n, 4) < 2 || chunks(len(want.Allocations), 4) < 2 || chunks(len(want.DoesNotFit), 4) < 2 {
			t.Fatalf("input too small to split: %d allocations, %d misfits", len(want.Allocations), len(want.DoesNotFit))
		}
		if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Plan{})); d != "" {
			t.Fatalf("plans differ (-one worker +four):\n%s", d)
		}
		for _, d := range demands {
			if w, g := want.Explain(d.Function), got.Explain(d.Function); w != g || w == "" {
				t.Fatalf("%q explained as %q by one worker, %q by four", d.Function, w, g)
			}
		}
	})

	t.Run("first error in name order", func(t *testing.T) {
		one, many := planners(Options{})
		bad := append([]Demand(nil), demands...)
		// Faults in several chunks: the one that comes first by name is
		// reported, whichever chunk finishes first.
		for _, i := range []int{n - 1, n / 2, n / 3} {
			bad[i].Peak = hal.Vector{hal.CPU: math.NaN()}
		}
		_, want := one.Plan(context.Background(), capacity, bad)
		_, got := many.Plan(context.Background(), capacity, bad)
		if want == nil || fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("errors differ: one worker %v, four %v", want, got)
		}
	})
}

func TestSplitCoversEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, parallelMin - 1, 2 * parallelMin, 5*parallelMin + 3} {
		for _, workers := range []int{0, 1, 2, 3, 16} {
			count := make([]int32, n)
			used := make([]bool, chunks(n, workers))
			split(n, workers, func(chunk, lo, hi int) {
				used[chunk] = true
				for i := lo; i < hi; i++ {
					count[i]++
				}
			})
			for i, c := range count {
				if c != 1 {
					t.Fatalf("n=%d workers=%d: index %d done %d times", n, workers, i, c)
				}
			}
			for c, u := range used {
				if !u && n > 0 {
					t.Fatalf("n=%d workers=%d: chunk %d of %d not used", n, workers, c, len(used))
				}
			}
		}
	}
}
