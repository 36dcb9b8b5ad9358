package partition

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/updraft-dev/updraft/hal"
)

// problem is a validated Plan input in dense form: resources are indexed
// in sorted order, functions in name order, and every per-function vector
// is a row of R floats in one flat slice (so that 100 000 functions cost a
// handful of allocations, not hundreds of thousands of maps).
type problem struct {
	res      []hal.Resource
	index    map[hal.Resource]int
	capacity []float64
	gran     []float64 // per resource; 0 = continuous
	umin     []float64 // per resource, the least non-zero guarantee; 0 = none
	unitStep []float64 // per resource, the step of Options.Units; 0 = none

	fns []fn
	// flat rows, len(fns)*R each
	peak  []float64 // max(Peak, Expected) for critical functions; max(Peak, Expected, Min) rounded up to granularity for others
	min   []float64 // Min (nil = Expected), rounded up to granularity
	named []bool    // resources the demand names
}

// fn is one function of a problem.
type fn struct {
	name     string
	critical bool
	weight   float64
	// tau is the fraction of its peak a non-critical function needs to
	// reach its minimum: max over resources of min/peak.
	tau float64
}

func (pb *problem) row(v []float64, i int) []float64 {
	r := len(pb.res)
	return v[i*r : (i+1)*r : (i+1)*r]
}

// prepare validates capacity and demands and builds the dense problem,
// whose peak and min rows live in s. Errors wrap ErrInvalidInput and name
// the function and resource at fault.
func (p *Planner) prepare(capacity hal.Vector, demands []Demand, s *scratch) (*problem, error) {
	if err := capacity.Validate(); err != nil {
		return nil, fmt.Errorf("%w: capacity: %w", ErrInvalidInput, err)
	}
	pb := &problem{res: capacity.Resources(), index: make(map[hal.Resource]int, len(capacity))}
	R := len(pb.res)
	pb.capacity = make([]float64, R)
	pb.gran = make([]float64, R)
	pb.umin = make([]float64, R)
	pb.unitStep = make([]float64, R)
	for i, r := range pb.res {
		pb.index[r] = i
		pb.capacity[i] = capacity[r]
		pb.gran[i] = p.granularity[r]
		pb.umin[i] = p.unitMin[r]
		pb.unitStep[i] = p.units[r].Step
	}

	s.order = resize(s.order, len(demands))
	order := s.order
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(demands[a].Function, demands[b].Function), cmp.Compare(a, b))
	})

	n := len(demands)
	pb.fns = make([]fn, n)
	s.peak, s.min = resize(s.peak, n*R), resize(s.min, n*R)
	pb.peak, pb.min = s.peak, s.min
	clear(pb.peak) // load writes only the resources a demand names
	clear(pb.min)
	pb.named = make([]bool, n*R)
	// Each function's rows are its own, so chunks of functions load at
	// once; the error reported is the first in name order, as it would
	// be loading them one by one.
	errs := make([]error, chunks(n, p.workers))
	split(n, p.workers, func(chunk, lo, hi int) {
		for k := lo; k < hi; k++ {
			if err := pb.loadDemand(demands, order, k, R); err != nil {
				errs[chunk] = err
				return
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pb, nil
}

// loadDemand checks the demand at position k of the name order and fills
// its rows.
func (pb *problem) loadDemand(demands []Demand, order []int, k, R int) error {
	i := order[k]
	d := &demands[i]
	if d.Function == "" {
		return fmt.Errorf("%w: demand %d has no function name", ErrInvalidInput, i)
	}
	if k > 0 && demands[order[k-1]].Function == d.Function {
		return fmt.Errorf("%w: function %q is listed twice (demands %d and %d)", ErrInvalidInput, d.Function, order[k-1], i)
	}
	w := d.Weight
	switch {
	case math.IsNaN(w) || math.IsInf(w, 0) || w < 0:
		return fmt.Errorf("%w: function %q: weight %v must be a finite number >= 0", ErrInvalidInput, d.Function, w)
	case w == 0:
		w = 1
	}
	pb.fns[k] = fn{name: d.Function, critical: d.Critical, weight: w}
	peak, min, named := pb.row(pb.peak, k), pb.row(pb.min, k), pb.named[k*R:(k+1)*R]
	// The minimum is Min, or Expected when Min is nil. A critical
	// function is guaranteed max(Peak, Expected); its Min is checked
	// but plays no part.
	minOfExpected, minOfMin := min, []float64(nil)
	if d.Min != nil {
		minOfExpected, minOfMin = nil, min
	}
	if err := pb.load(d.Function, "Expected", d.Expected, peak, named, true, minOfExpected); err != nil {
		return err
	}
	if err := pb.load(d.Function, "Peak", d.Peak, peak, named, true, nil); err != nil {
		return err
	}
	if err := pb.load(d.Function, "Min", d.Min, peak, named, !d.Critical, minOfMin); err != nil {
		return err
	}
	tau := 0.0
	for j := range R {
		if !d.Critical && min[j] > 0 && min[j] < pb.umin[j] {
			min[j] = pb.umin[j] // a device hands out no less
			peak[j] = math.Max(peak[j], min[j])
		}
		if g := pb.gran[j]; g > 0 {
			if !d.Critical { // critical guarantees round after the margin
				peak[j] = roundUp(peak[j], g)
			}
			min[j] = roundUp(min[j], g)
		}
		if peak[j] > 0 {
			tau = math.Max(tau, min[j]/peak[j])
		}
	}
	pb.fns[k].tau = math.Min(tau, 1)
	return nil
}

// load checks one vector of a demand and, if fold, folds it into the
// function's direction row (element-wise maximum) and named set; if min
// is not nil, it also copies the vector into min. It looks
// each capacity resource up rather than ranging over v: cheaper for the
// small maps demands are, and it checks in sorted order, so the error for
// a vector with several faults is always the same one.
func (pb *problem) load(function, field string, v hal.Vector, peak []float64, named []bool, fold bool, min []float64) error {
	if len(v) == 0 {
		return nil
	}
	found := 0
	for j, r := range pb.res {
		q, ok := v[r]
		if !ok {
			continue
		}
		found++
		if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 {
			return fmt.Errorf("%w: function %q %s: resource %q: quantity %v must be a finite number >= 0",
				ErrInvalidInput, function, field, r, q)
		}
		if min != nil {
			min[j] = q
		}
		if !fold {
			continue
		}
		named[j] = true
		if q > peak[j] {
			peak[j] = q
		}
	}
	if found < len(v) {
		for _, r := range v.Resources() {
			// A zero of a resource the device lacks asks for nothing
			// (forecasts often list every resource they measure).
			if _, ok := pb.index[r]; !ok && v[r] != 0 {
				return fmt.Errorf("%w: function %q %s: resource %q is not in the capacity (offered: %s)",
					ErrInvalidInput, function, field, r, joinResources(pb.res))
			}
		}
	}
	return nil
}

func joinResources(rs []hal.Resource) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// roundEps absorbs floating-point noise when rounding to a granularity:
// 0.3/0.1 is 2.9999999999999996, which must count as 3.
const roundEps = 1e-9

func roundUp(q, g float64) float64 {
	return math.Ceil(q/g-roundEps) * g
}

func roundDown(q, g float64) float64 {
	return math.Floor(q/g+roundEps) * g
}
