package partition_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/partition"
)

// Property tests over random inputs: each seed is one case, so a failure
// names the seed that reproduces it.

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

var pool = []hal.Resource{hal.CPU, hal.Memory, hal.IO, "nic.queue"}

var scale = map[hal.Resource]float64{hal.CPU: 4, hal.Memory: 4 * gib, hal.IO: 100 << 20, "nic.queue": 8}

// randomVector draws quantities for a random subset of resources.
func randomVector(rng *rand.Rand, resources []hal.Resource, size float64) hal.Vector {
	v := hal.Vector{}
	for _, r := range resources {
		if rng.IntN(4) > 0 {
			v[r] = rng.Float64() * size * scale[r]
		}
	}
	return v
}

// randomInput draws a capacity over 1 to 4 resources and n demands; about
// a fifth of the critical sets do not fit, about half of the non-critical
// functions do not.
func randomInput(rng *rand.Rand, n int) (hal.Vector, []partition.Demand) {
	resources := slices.Clone(pool[:1+rng.IntN(len(pool))])
	capacity := hal.Vector{}
	for _, r := range resources {
		capacity[r] = scale[r] * (0.5 + rng.Float64()*float64(n)/2)
	}
	demands := make([]partition.Demand, n)
	for i := range demands {
		d := partition.Demand{Function: fmt.Sprintf("f%02d", i), Critical: rng.IntN(5) == 0}
		d.Peak = randomVector(rng, resources, 1)
		switch rng.IntN(3) {
		case 0:
			d.Expected = d.Peak.Scale(rng.Float64())
		case 1:
			d.Expected = randomVector(rng, resources, 0.5)
		}
		switch rng.IntN(4) {
		case 0:
			d.Min = d.Peak.Scale(rng.Float64())
		case 1:
			d.Min = hal.Vector{}
		}
		d.Weight = float64(rng.IntN(4)) * (0.5 + rng.Float64())
		demands[i] = d
	}
	return capacity, demands
}

func randomOptions(rng *rand.Rand) partition.Options {
	opts := partition.Options{}
	switch rng.IntN(3) {
	case 0:
		opts.Margin = partition.NoMargin
	case 1:
		opts.Margin = rng.Float64()
	}
	switch rng.IntN(3) {
	case 0:
		opts.Reserve = partition.NoReserve
	case 1:
		opts.Reserve = rng.Float64() * 0.9
	}
	if rng.IntN(2) == 0 {
		opts.Granularity = hal.Vector{"nic.queue": 1}
	}
	return opts
}

const tolerance = 1e-9

func leq(a, b float64) bool { return a <= b+tolerance*math.Max(1, math.Abs(b)) }

func roundUp(q, g float64) float64 {
	if g == 0 {
		return q
	}
	return math.Ceil(q/g-1e-9) * g
}

// checkPlan asserts what every plan must satisfy, computed from the input
// alone.
func checkPlan(t *testing.T, p *partition.Planner, opts partition.Options, capacity hal.Vector, demands []partition.Demand, plan partition.Plan, err error) {
	t.Helper()
	// What every critical function must be guaranteed.
	need := map[string]hal.Vector{}
	total := hal.Vector{}
	for _, d := range demands {
		if !d.Critical {
			continue
		}
		g := hal.Vector{}
		for r, q := range d.Peak.Max(d.Expected) {
			g[r] = roundUp(q*(1+p.Margin()), opts.Granularity[r])
		}
		need[d.Function] = g
		total = total.Add(g)
	}
	short := total.Shortfall(capacity)
	if err != nil {
		var se *partition.ShortfallError
		if !errors.As(err, &se) {
			t.Fatalf("unexpected error: %v", err)
		}
		if len(short) == 0 || !slices.Equal(se.Shortfall.Resources(), short.Resources()) {
			t.Fatalf("shortfall %v reported, critical needs %v within capacity %v", se.Shortfall, total, capacity)
		}
		return
	}
	for r, s := range short {
		if s > tolerance*capacity[r] {
			t.Fatalf("plan succeeded but critical functions need %v, capacity %v", total, capacity)
		}
	}

	if !slices.IsSortedFunc(plan.Allocations, func(a, b hal.Allocation) int { return cmpString(a.Function, b.Function) }) {
		t.Errorf("allocations not sorted by function")
	}
	seen := map[string]int{}
	sum := hal.Vector{}
	for _, a := range plan.Allocations {
		seen[a.Function]++
		if err := a.Validate(); err != nil {
			t.Errorf("invalid allocation: %v", err)
		}
		sum = sum.Add(a.Guarantee)
	}
	for _, m := range plan.DoesNotFit {
		seen[m.Function]++
	}
	for _, d := range demands {
		if seen[d.Function] != 1 {
			t.Errorf("function %q appears %d times among allocations and misfits", d.Function, seen[d.Function])
		}
		if plan.Explain(d.Function) == "" {
			t.Errorf("function %q has no explanation", d.Function)
		}
		a, ok := plan.Allocation(d.Function)
		switch {
		case d.Critical && !ok:
			t.Errorf("critical %q has no allocation", d.Function)
		case d.Critical:
			for r, q := range need[d.Function] {
				if !leq(q, a.Guarantee[r]) {
					t.Errorf("critical %q resource %s: guaranteed %v, needs %v", d.Function, r, a.Guarantee[r], q)
				}
				if !leq(a.Guarantee[r]+plan.Reserve[r], a.Limit[r]) || !leq(a.Limit[r], a.Guarantee[r]+plan.Reserve[r]) {
					t.Errorf("critical %q resource %s: limit %v is not guarantee %v + reserve %v", d.Function, r, a.Limit[r], a.Guarantee[r], plan.Reserve[r])
				}
			}
		case ok:
			min := d.Min
			if min == nil {
				min = d.Expected
			}
			for r, q := range min {
				if !leq(roundUp(q, opts.Granularity[r]), a.Guarantee[r]) {
					t.Errorf("non-critical %q resource %s: guaranteed %v, below its minimum %v", d.Function, r, a.Guarantee[r], q)
				}
			}
			for r, q := range a.Guarantee {
				if peak := roundUp(d.Peak.Max(d.Expected).Max(d.Min)[r], opts.Granularity[r]); !leq(q, peak) {
					t.Errorf("non-critical %q resource %s: guaranteed %v, above its peak %v", d.Function, r, q, peak)
				}
			}
			if !cmp.Equal(a.Guarantee, a.Limit) {
				t.Errorf("non-critical %q: limit %v differs from guarantee %v", d.Function, a.Limit, a.Guarantee)
			}
		}
	}
	for r, c := range capacity {
		if !leq(sum[r], c) {
			t.Errorf("resource %s: %v guaranteed, capacity %v", r, sum[r], c)
		}
		if got := sum[r] + plan.Reserve[r]; !leq(got, c) || !leq(c, got) {
			t.Errorf("resource %s: guarantees %v + reserve %v != capacity %v", r, sum[r], plan.Reserve[r], c)
		}
	}
	// The plan is something a real device accepts.
	dev := sim.New(capacity)
	undo, err := dev.Apply(context.Background(), plan.Allocations)
	if err != nil {
		t.Errorf("sim device refuses the plan: %v", err)
	} else if err := undo(context.Background()); err != nil {
		t.Errorf("undo: %v", err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestPropertyInvariants(t *testing.T) {
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			opts := randomOptions(rng)
			p := mustNew(t, opts)
			capacity, demands := randomInput(rng, 1+rng.IntN(30))
			plan, err := p.Plan(context.Background(), capacity, demands)
			checkPlan(t, p, opts, capacity, demands, plan, err)
		})
	}
}

func TestPropertyDeterministic(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			p := mustNew(t, randomOptions(rng))
			capacity, demands := randomInput(rng, 1+rng.IntN(30))
			want, wantErr := p.Plan(context.Background(), capacity, demands)
			shuffled := slices.Clone(demands)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, in := range [][]partition.Demand{demands, shuffled} {
				got, gotErr := p.Plan(context.Background(), capacity, in)
				if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(partition.Plan{})); d != "" {
					t.Fatalf("equal inputs, different plans (-first +again):\n%s", d)
				}
				for _, d := range demands {
					if w, g := want.Explain(d.Function), got.Explain(d.Function); w != g {
						t.Fatalf("equal inputs, different explanations of %q: %q / %q", d.Function, w, g)
					}
				}
				if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
					t.Fatalf("equal inputs, different errors: %v / %v", wantErr, gotErr)
				}
			}
		})
	}
}

// late reports whether the second pass admitted function.
func late(plan partition.Plan, function string) bool {
	return strings.Contains(plan.Explain(function), "given its minimum")
}

// TestPropertyMoreCapacityNeverShrinks: more capacity never shrinks the
// guarantee of a critical function or of one the fair fill admitted, nor
// takes its allocation away. Functions admitted by the second pass are
// not covered: a higher fill may use what they had fitted in.
func TestPropertyMoreCapacityNeverShrinks(t *testing.T) {
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			p := mustNew(t, randomOptions(rng))
			capacity, demands := randomInput(rng, 1+rng.IntN(30))
			before, err := p.Plan(context.Background(), capacity, demands)
			if err != nil {
				return // a shortfall: nothing allocated to shrink
			}
			more := capacity.Clone()
			for r := range more {
				if rng.IntN(2) == 0 {
					more[r] += rng.Float64() * scale[r] * float64(rng.IntN(4))
				}
			}
			after, err := p.Plan(context.Background(), more, demands)
			if err != nil {
				t.Fatalf("capacity %v plans, more capacity %v fails: %v", capacity, more, err)
			}
			for _, a := range before.Allocations {
				if late(before, a.Function) {
					continue // the second pass gives no such promise (see the package documentation)
				}
				b, ok := after.Allocation(a.Function)
				if !ok {
					t.Fatalf("%q allocated with capacity %v, not with more %v", a.Function, capacity, more)
				}
				for r, q := range a.Guarantee {
					if !leq(q, b.Guarantee[r]) {
						t.Errorf("%q resource %s: guarantee shrank from %v to %v when capacity grew from %v to %v",
							a.Function, r, q, b.Guarantee[r], capacity, more)
					}
				}
			}
		})
	}
}

// TestPropertyLarge runs the invariants and monotonicity on a few inputs
// large enough for the fill's radix sort and for many ties in weight.
func TestPropertyLarge(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(1000 + seed)
			opts := randomOptions(rng)
			p := mustNew(t, opts)
			capacity, demands := randomInput(rng, 400+rng.IntN(400))
			plan, err := p.Plan(context.Background(), capacity, demands)
			checkPlan(t, p, opts, capacity, demands, plan, err)
			if err != nil {
				return
			}
			t.Logf("%d functions: %d allocated, %d do not fit", len(demands), len(plan.Allocations), len(plan.DoesNotFit))
			more := capacity.Scale(1.05)
			after, err := p.Plan(context.Background(), more, demands)
			if err != nil {
				t.Fatalf("more capacity fails: %v", err)
			}
			for _, a := range plan.Allocations {
				if late(plan, a.Function) {
					continue
				}
				b, ok := after.Allocation(a.Function)
				if !ok {
					t.Fatalf("%q lost its allocation with more capacity", a.Function)
				}
				for r, q := range a.Guarantee {
					if !leq(q, b.Guarantee[r]) {
						t.Errorf("%q resource %s: guarantee shrank from %v to %v", a.Function, r, q, b.Guarantee[r])
					}
				}
			}
		})
	}
}

// FuzzPlan checks the invariants on inputs the fuzzer shapes: capacity,
// one critical and two non-critical functions over cpu and memory.
func FuzzPlan(f *testing.F) {
	f.Add(8.0, 16.0, 2.0, 4.0, 1.0, 3.0, 2.0, 6.0, 1.0, 0.5, 1.0)
	f.Add(1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
	f.Add(4.0, 4.0, 5.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0)
	f.Fuzz(func(t *testing.T, cpu, mem, critCPU, critMem, aMin, aPeak, bMin, bPeak, bMem, margin, weight float64) {
		opts := partition.Options{Margin: margin}
		p, err := partition.New(opts)
		if err != nil {
			return
		}
		capacity := hal.Vector{hal.CPU: cpu, hal.Memory: mem}
		demands := []partition.Demand{
			{Function: "crit", Critical: true, Peak: hal.Vector{hal.CPU: critCPU, hal.Memory: critMem}},
			{Function: "a", Min: hal.Vector{hal.CPU: aMin}, Peak: hal.Vector{hal.CPU: aPeak}, Weight: weight},
			{Function: "b", Min: hal.Vector{hal.CPU: bMin}, Peak: hal.Vector{hal.CPU: bPeak, hal.Memory: bMem}},
		}
		plan, err := p.Plan(context.Background(), capacity, demands)
		if errors.Is(err, partition.ErrInvalidInput) {
			return // NaN, negative and infinite inputs are refused, by design
		}
		if math.Max(cpu, mem) > 1e12 || margin > 1e6 {
			return // beyond the float precision the invariants are checked to
		}
		checkPlan(t, p, opts, capacity, demands, plan, err)
	})
}

// TestPropertyReusedPlannerPlansLikeANewOne plans a sequence of inputs of
// different sizes and resources with one Planner, which reuses its
// working buffers from call to call, and requires every plan (and error,
// and explanation) to equal the one a fresh Planner makes: nothing of one
// call may leak into the next.
func TestPropertyReusedPlannerPlansLikeANewOne(t *testing.T) {
	for seed := range uint64(50) {
		rng := newRand(seed)
		opts := randomOptions(rng)
		reused := mustNew(t, opts)
		for step := range 6 {
			capacity, demands := randomInput(rng, 1+rng.IntN(60))
			if step == 3 {
				demands[rng.IntN(len(demands))].Peak = hal.Vector{pool[0]: -1} // a failed call in between
			}
			got, gotErr := reused.Plan(context.Background(), capacity, demands)
			want, wantErr := mustNew(t, opts).Plan(context.Background(), capacity, demands)
			if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
				t.Fatalf("seed %d step %d: errors differ: new planner %v, reused %v", seed, step, wantErr, gotErr)
			}
			if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(partition.Plan{})); d != "" {
				t.Fatalf("seed %d step %d: plans differ (-new planner +reused):\n%s", seed, step, d)
			}
			for _, d := range demands {
				if w, g := want.Explain(d.Function), got.Explain(d.Function); w != g {
					t.Fatalf("seed %d step %d: %q explained %q by a new planner, %q by the reused one", seed, step, d.Function, w, g)
				}
			}
		}
	}
}

// tieInput draws demands from a few discrete quantities, so that many
// functions join the fill at the same level and some demands are equal
// but for the name: the cases where a name could decide.
func tieInput(rng *rand.Rand, n int) (hal.Vector, []partition.Demand) {
	resources := slices.Clone(pool[:1+rng.IntN(len(pool))])
	capacity := hal.Vector{}
	for _, r := range resources {
		capacity[r] = scale[r] * float64(1+rng.IntN(n+1)) / 2
	}
	q := func(r hal.Resource) float64 { return scale[r] * float64(rng.IntN(5)) / 4 }
	demands := make([]partition.Demand, n)
	for i := range demands {
		if i > 0 && rng.IntN(4) == 0 {
			demands[i] = demands[rng.IntN(i)] // the same demand under another name
			demands[i].Function = fmt.Sprintf("f%02d", i)
			continue
		}
		d := partition.Demand{Function: fmt.Sprintf("f%02d", i), Critical: rng.IntN(6) == 0, Peak: hal.Vector{}}
		for _, r := range resources {
			if rng.IntN(3) > 0 {
				d.Peak[r] = q(r)
			}
		}
		if rng.IntN(2) == 0 {
			d.Expected = d.Peak
		} else {
			d.Min = d.Peak.Scale(float64(rng.IntN(3)) / 2)
		}
		d.Weight = float64(rng.IntN(3))
		demands[i] = d
	}
	return capacity, demands
}

// signature is a demand as the planner sees it, without its name: two
// demands with the same signature are interchangeable.
func signature(d partition.Demand) string {
	min := d.Min
	if min == nil {
		min = d.Expected
	}
	peak := d.Peak.Max(d.Expected)
	named := d.Peak.Add(d.Expected)
	if !d.Critical {
		peak = peak.Max(d.Min)
		named = named.Add(d.Min)
	} else {
		min = nil
	}
	w := d.Weight
	if w == 0 {
		w = 1
	}
	return fmt.Sprintf("critical=%v weight=%v peak=%v min=%v names=%v", d.Critical, w, map[hal.Resource]float64(peak), map[hal.Resource]float64(min), named.Resources())
}

// outcome is what a plan gives one demand, its name left out: the
// allocation's vectors, or the misfit's need, reason and rank.
type outcome struct {
	Signature        string
	Guarantee, Limit hal.Vector
	Rank             int
	Need             hal.Vector
	Explain          string
}

// outcomes lists what plan gives each demand, sorted, so that two plans of
// the same demands under other names and in another order compare equal
// when they differ only by the renaming. Demands equal but for the name
// are interchangeable: which of them is in does not matter, how many.
func outcomes(plan partition.Plan, demands []partition.Demand) []outcome {
	rank := map[string]int{}
	for k, m := range plan.DoesNotFit {
		rank[m.Function] = k + 1
	}
	var out []outcome
	for _, d := range demands {
		o := outcome{Signature: signature(d), Rank: rank[d.Function], Explain: plan.Explain(d.Function)}
		if a, ok := plan.Allocation(d.Function); ok {
			o.Guarantee, o.Limit = a.Guarantee, a.Limit
		} else if o.Rank > 0 {
			o.Need = plan.DoesNotFit[o.Rank-1].Need
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b outcome) int {
		return cmpString(fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", b))
	})
	return out
}

// TestPropertyNamesAndOrderDoNotMatter renames and shuffles the demands:
// the plan must be the same but for the renaming. Misfits of equal
// demands may trade ranks (their outcomes are compared as a multiset).
func TestPropertyNamesAndOrderDoNotMatter(t *testing.T) {
	for seed := range uint64(600) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			opts := randomOptions(rng)
			p := mustNew(t, opts)
			var capacity hal.Vector
			var demands []partition.Demand
			if seed%2 == 0 {
				capacity, demands = tieInput(rng, 1+rng.IntN(30))
			} else {
				capacity, demands = randomInput(rng, 1+rng.IntN(30))
			}
			want, wantErr := p.Plan(context.Background(), capacity, demands)
			renamed := slices.Clone(demands)
			for i, name := range rng.Perm(len(renamed)) {
				// names in another order than the original ones
				renamed[i].Function = fmt.Sprintf("%c-%d", 'z'-rune(name%26), name)
			}
			rng.Shuffle(len(renamed), func(i, j int) { renamed[i], renamed[j] = renamed[j], renamed[i] })
			got, gotErr := p.Plan(context.Background(), capacity, renamed)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("renaming changes the error: %v / %v", wantErr, gotErr)
			}
			if wantErr != nil {
				return
			}
			if d := cmp.Diff(outcomes(want, demands), outcomes(got, renamed)); d != "" {
				t.Fatalf("renamed and shuffled, the plan changes (-original +renamed):\n%s", d)
			}
			if d := cmp.Diff(want.Reserve, got.Reserve); d != "" {
				t.Fatalf("renamed and shuffled, the reserve changes:\n%s", d)
			}
		})
	}
}

// TestPropertyWhatFitsIsAllocated: no function is left out whose minimum
// fits in what the plan leaves free under the reserve rule: the capacity
// less the configured reserve (less what critical guarantees took of
// it) less every guarantee.
func TestPropertyWhatFitsIsAllocated(t *testing.T) {
	for seed := range uint64(600) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			opts := randomOptions(rng)
			p := mustNew(t, opts)
			var capacity hal.Vector
			var demands []partition.Demand
			if seed%2 == 0 {
				capacity, demands = tieInput(rng, 1+rng.IntN(30))
			} else {
				capacity, demands = randomInput(rng, 1+rng.IntN(30))
			}
			plan, err := p.Plan(context.Background(), capacity, demands)
			checkPlan(t, p, opts, capacity, demands, plan, err)
			if err != nil {
				return
			}
			critical := map[string]bool{}
			for _, d := range demands {
				critical[d.Function] = d.Critical
			}
			free := hal.Vector{}
			for r, c := range capacity {
				free[r] = c * (1 - p.Reserve())
			}
			var given hal.Vector
			for _, a := range plan.Allocations {
				if critical[a.Function] {
					for r, q := range a.Guarantee {
						free[r] -= q
					}
				} else {
					given = given.Add(a.Guarantee)
				}
			}
			for r := range free {
				free[r] = math.Max(0, free[r]) - given[r]
			}
			for _, m := range plan.DoesNotFit {
				fits := true
				for r, q := range m.Need {
					if q > free[r]-tolerance*math.Max(1, capacity[r]) {
						fits = false
					}
				}
				if fits {
					t.Errorf("%q left out needing %v with %v free: %s", m.Function, m.Need, free, m.Reason)
				}
			}
		})
	}
}

// TestPropertyUnits: with units, every guarantee of a resource is a whole
// number of steps and zero or at least the minimum, critical functions
// still get their demand plus margin, and the plan fits the capacity.
func TestPropertyUnits(t *testing.T) {
	units := map[hal.Resource]partition.Unit{"nic.queue": {Step: 1, Min: 2}, hal.Memory: {Step: 64 << 20, Min: 128 << 20}}
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := newRand(seed)
			opts := randomOptions(rng)
			opts.Granularity = nil
			opts.Units = units
			p := mustNew(t, opts)
			capacity, demands := randomInput(rng, 1+rng.IntN(30))
			if seed%2 == 0 {
				capacity, demands = tieInput(rng, 1+rng.IntN(30))
			}
			plan, err := p.Plan(context.Background(), capacity, demands)
			var short *partition.ShortfallError
			if errors.As(err, &short) {
				return
			}
			require.NoError(t, err)
			sum := hal.Vector{}
			for _, a := range plan.Allocations {
				sum = sum.Add(a.Guarantee)
				if err := hal.CheckUnits(units, a); err != nil {
					t.Errorf("a device with these units refuses the plan: %v", err)
				}
				for r, u := range units {
					q := a.Guarantee[r]
					if k := q / u.Step; math.Abs(k-math.Round(k)) > 1e-6 {
						t.Errorf("%s %s=%v is not a whole number of steps of %v", a.Function, r, q, u.Step)
					}
					if q != 0 && q < u.Min*(1-1e-9) {
						t.Errorf("%s %s=%v is below the minimum %v", a.Function, r, q, u.Min)
					}
				}
			}
			for _, d := range demands {
				if !d.Critical {
					continue
				}
				a, _ := plan.Allocation(d.Function)
				for r, q := range d.Peak.Max(d.Expected) {
					if !leq(q*(1+p.Margin()), a.Guarantee[r]) {
						t.Errorf("critical %s %s: guaranteed %v, needs %v", d.Function, r, a.Guarantee[r], q*(1+p.Margin()))
					}
				}
			}
			for r, c := range capacity {
				if !leq(sum[r], c) {
					t.Errorf("%s: %v guaranteed, capacity %v", r, sum[r], c)
				}
			}
		})
	}
}
