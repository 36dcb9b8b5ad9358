package partition_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
)

// benchInput returns n demands, a tenth of them critical, over cpu, memory
// and io, sized so that about a quarter of the non-critical ones do not fit.
func benchInput(n int) (hal.Vector, []partition.Demand) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	demands := make([]partition.Demand, n)
	var crit hal.Vector
	total := hal.Vector{}
	for i := range demands {
		peak := hal.Vector{
			hal.CPU:    0.1 + rng.Float64()*2,
			hal.Memory: float64(64<<20) * (1 + rng.Float64()*16),
			hal.IO:     float64(1<<20) * (1 + rng.Float64()*50),
		}
		d := partition.Demand{
			Function: fmt.Sprintf("fn-%06d", i),
			Critical: i%10 == 0,
			Peak:     peak,
			Expected: peak.Scale(0.3 + rng.Float64()*0.5),
			Weight:   float64(1 + rng.IntN(3)),
		}
		if d.Critical {
			crit = crit.Add(peak)
		}
		total = total.Add(peak)
		demands[i] = d
	}
	capacity := crit.Scale(1.3).Add(total.Sub(crit).Scale(0.4))
	return capacity, demands
}

// lpMax is the largest size the LP baseline runs at. Its dense tableau
// grows with the square of the functions and Simplex pivots about once per
// function: 1000 functions take about a minute
// (go test -run '^$' -bench Plan ./partition -args -lpmax=1000), and
// 100 000 would need about 80 GB.
var lpMax = flag.Int("lpmax", 10, "largest BenchmarkPlan size to run the LP baseline at")

// BenchmarkPlan times Plan beside two baselines on the same input:
// baseline=copy, the floor any planner pays (validate the demands, emit one
// allocation per function), and baseline=lp, gonum's Simplex on the LP the
// package documentation weighs against the fill.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		capacity, demands := benchInput(n)
		planner, err := partition.New(partition.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("functions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := planner.Plan(context.Background(), capacity, demands); err != nil {
					b.Fatal(err)
				}
			}
		})
		if n <= *lpMax {
			b.Run(fmt.Sprintf("functions=%d/baseline=lp", n), func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					if _, err := lpPlan(capacity, demands); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("functions=%d/baseline=copy", n), func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, _, err := copyPlan(capacity, demands); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// copyPlan is the floor any planner pays: validate every demand and emit
// one allocation per function, sorted, with its peak as guarantee and
// limit.
//
// It still fills a map of one explanation per function, as Plan did before
// it learnt to explain lazily ([partition.Plan.Explain]), so that the floor
// stays the same work it was measured as in earlier runs.
func copyPlan(capacity hal.Vector, demands []partition.Demand) (partition.Plan, map[string]string, error) {
	plan := partition.Plan{Allocations: make([]hal.Allocation, 0, len(demands))}
	explanations := make(map[string]string, len(demands))
	for _, d := range demands {
		if err := d.Peak.Validate(); err != nil {
			return plan, explanations, err
		}
		plan.Allocations = append(plan.Allocations, hal.Allocation{Function: d.Function, Guarantee: d.Peak.Clone(), Limit: d.Peak.Clone()})
		explanations[d.Function] = "copied"
	}
	slices.SortFunc(plan.Allocations, func(a, b hal.Allocation) int { return strings.Compare(a.Function, b.Function) })
	return plan, explanations, nil
}

// lpPlan is the LP a planner could solve instead of the fill: maximise
// the weighted sum of the fractions t_i of their peaks the non-critical
// functions get, subject to capacity, with 0 <= t_i <= 1 (the continuous
// relaxation: minimums would make it a MILP). It is written directly in
// the standard form gonum's Simplex takes (A x = b, x >= 0): one slack per
// resource and one per upper bound, which also give a feasible start.
func lpPlan(capacity hal.Vector, demands []partition.Demand) ([]float64, error) {
	resources := capacity.Resources()
	crit := hal.Vector{}
	var fns []partition.Demand
	for _, d := range demands {
		if d.Critical {
			crit = crit.Add(d.Peak.Scale(1 + partition.DefaultMargin))
		} else {
			fns = append(fns, d)
		}
	}
	n, R := len(fns), len(resources)
	rows, cols := R+n, 2*n+R
	A := mat.NewDense(rows, cols, nil)
	b := make([]float64, rows)
	c := make([]float64, cols)
	basic := make([]int, rows)
	for j, r := range resources {
		unit := math.Max(capacity[r], 1) // rows in fractions of capacity keep the tableau well conditioned
		for i, d := range fns {
			A.Set(j, i, d.Peak[r]/unit)
		}
		A.Set(j, n+j, 1)
		b[j] = math.Max(0, capacity[r]*(1-partition.DefaultReserve)-crit[r]) / unit
		basic[j] = n + j
	}
	for i, d := range fns {
		A.Set(R+i, i, 1)
		A.Set(R+i, n+R+i, 1)
		b[R+i] = 1
		basic[R+i] = n + R + i
		w := d.Weight
		if w == 0 {
			w = 1
		}
		c[i] = -w
	}
	_, x, err := lp.Simplex(c, A, b, 1e-10, basic)
	return x, err
}

// reportCPU adds a cpu-ns/op metric: the process CPU time per operation,
// GC included. On a shared machine wall time (ns/op) also counts the time
// other processes held the cores; CPU time does not.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, _ := processCPU()
		if ok && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
