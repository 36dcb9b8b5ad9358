package partition_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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

func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		capacity, demands := benchInput(n)
		planner, err := partition.New(partition.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("functions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := planner.Plan(context.Background(), capacity, demands); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("functions=%d/baseline=copy", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := copyPlan(capacity, demands); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// copyPlan is the floor any planner pays: validate every demand and emit
// one allocation per function, sorted, with its peak as guarantee and
// limit.
func copyPlan(capacity hal.Vector, demands []partition.Demand) (partition.Plan, error) {
	plan := partition.Plan{Allocations: make([]hal.Allocation, 0, len(demands)), Explanations: make(map[string]string, len(demands))}
	for _, d := range demands {
		if err := d.Peak.Validate(); err != nil {
			return plan, err
		}
		plan.Allocations = append(plan.Allocations, hal.Allocation{Function: d.Function, Guarantee: d.Peak.Clone(), Limit: d.Peak.Clone()})
		plan.Explanations[d.Function] = "copied"
	}
	slices.SortFunc(plan.Allocations, func(a, b hal.Allocation) int { return strings.Compare(a.Function, b.Function) })
	return plan, nil
}
