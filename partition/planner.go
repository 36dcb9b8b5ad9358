package partition

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/updraft-dev/updraft/hal"
)

// Plan plans capacity among demands. It fails with an error wrapping
// [ErrInvalidInput] on bad input, with a [*ShortfallError] when the
// critical functions' peaks plus margin do not fit in capacity, and with
// ctx's error if ctx is done. The plan depends only on the capacity and
// the demands, not on the functions' names nor their order (see the
// package documentation).
func (p *Planner) Plan(ctx context.Context, capacity hal.Vector, demands []Demand) (Plan, error) {
	if err := ctx.Err(); err != nil {
		return Plan{}, fmt.Errorf("partition: plan: %w", err)
	}
	s := p.getScratch()
	defer p.scratch.Put(s)
	pb, err := p.prepare(capacity, demands, s)
	if err != nil {
		return Plan{}, err
	}
	R := len(pb.res)

	// 1. Critical functions: peak plus margin, or a shortfall.
	guarantee := make([]float64, len(pb.fns)*R)
	for i, f := range pb.fns {
		if !f.critical {
			continue
		}
		g := pb.row(guarantee, i)
		for j, q := range pb.row(pb.peak, i) {
			g[j] = q * (1 + p.margin)
			if g[j] > 0 && g[j] < pb.umin[j] {
				g[j] = pb.umin[j]
			}
			if gr := pb.gran[j]; gr > 0 {
				g[j] = roundUp(g[j], gr)
			}
		}
	}
	isCritical := func(i int) bool { return pb.fns[i].critical }
	critical := pb.sum(guarantee, isCritical)
	if err := pb.shortfall(critical); err != nil {
		return Plan{}, err
	}
	if err := ctx.Err(); err != nil {
		return Plan{}, fmt.Errorf("partition: plan: %w", err)
	}

	// 2. Non-critical functions: weighted fair fill of what is left once
	// the reserve is set aside.
	avail := make([]float64, R)
	for j, c := range pb.capacity {
		avail[j] = math.Max(0, c*(1-p.reserve)-critical[j])
	}
	fr := fill(pb, avail, s)
	for i, f := range pb.fns {
		if f.critical || !fr.admitted[i] {
			continue
		}
		t := share(f.weight, fr.level)
		g := pb.row(guarantee, i)
		for j, q := range pb.row(pb.peak, i) {
			g[j] = q * t
			if gr := pb.gran[j]; gr > 0 {
				g[j] = roundDown(g[j], gr)
			}
			if g[j] < pb.umin[j] {
				g[j] = 0 // below what the device hands out: none
			}
		}
	}
	// 2b. Every function the fill left out whose minimum fits in what is
	// still free gets its minimum.
	free := slices.Clone(avail)
	for j, q := range pb.sum(guarantee, func(i int) bool { return !pb.fns[i].critical && fr.admitted[i] }) {
		free[j] -= q
	}
	pb.fits(&fr, free, guarantee)

	// 3. Reserve: everything not guaranteed to anyone.
	reserve := make([]float64, R)
	for j, q := range pb.sum(guarantee, func(i int) bool { return pb.fns[i].critical || fr.admitted[i] }) {
		reserve[j] = math.Max(0, pb.capacity[j]-q)
	}

	plan := pb.build(p.margin, guarantee, reserve, fr, p.workers)
	p.log.DebugContext(ctx, "partition: planned",
		"functions", len(pb.fns), "allocations", len(plan.Allocations),
		"does_not_fit", len(plan.DoesNotFit), "reserve", plan.Reserve.String())
	return plan, nil
}

// sum adds up, per resource, the rows of v of the functions pick picks.
// It adds each resource's quantities in increasing order, so that the
// sums, to the last bit, do not depend on the order of the functions,
// which is their name order: a plan must not change when functions are
// renamed.
func (pb *problem) sum(v []float64, pick func(i int) bool) []float64 {
	R := len(pb.res)
	sums := make([]float64, R)
	var q []float64
	for j := range R {
		q = q[:0]
		for i := range pb.fns {
			if pick(i) {
				q = append(q, v[i*R+j])
			}
		}
		slices.Sort(q)
		for _, x := range q {
			sums[j] += x
		}
	}
	return sums
}

// shortfall returns a *ShortfallError if the critical guarantees exceed
// the capacity on some resource.
func (pb *problem) shortfall(critical []float64) error {
	short := hal.Vector{}
	for j, q := range critical {
		if d := q - pb.capacity[j]; d > 0 {
			short[pb.res[j]] = d
		}
	}
	if len(short) == 0 {
		return nil
	}
	e := &ShortfallError{Shortfall: short, Need: pb.vector(critical, nil), Capacity: pb.vector(pb.capacity, nil), steps: hal.Vector{}}
	for r := range short {
		if g := pb.gran[pb.index[r]]; g > 0 {
			e.steps[r] = g
		}
	}
	for i, f := range pb.fns {
		if !f.critical {
			continue
		}
		for j, q := range pb.row(pb.peak, i) {
			if _, ok := short[pb.res[j]]; ok && q > 0 {
				e.Functions = append(e.Functions, f.name)
				break
			}
		}
	}
	return e
}

// vector turns a dense row into a hal.Vector, keeping the resources named
// (all when named is nil).
func (pb *problem) vector(row []float64, named []bool) hal.Vector {
	v := make(hal.Vector, len(row))
	for j, q := range row {
		if named == nil || named[j] {
			v[pb.res[j]] = q
		}
	}
	return v
}
