package partition

import (
	"context"
	"fmt"
	"math"

	"github.com/updraft-dev/updraft/hal"
)

// Plan plans capacity among demands. It fails with an error wrapping
// [ErrInvalidInput] on bad input, with a [*ShortfallError] when the
// critical functions' peaks plus margin do not fit in capacity, and with
// ctx's error if ctx is done. The plan depends only on the set of demands,
// not on their order.
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
	critical := make([]float64, R)
	for i, f := range pb.fns {
		if !f.critical {
			continue
		}
		g := pb.row(guarantee, i)
		for j, q := range pb.row(pb.peak, i) {
			g[j] = q * (1 + p.margin)
			if gr := pb.gran[j]; gr > 0 {
				g[j] = roundUp(g[j], gr)
			}
			critical[j] += g[j]
		}
	}
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
		}
	}

	// 3. Reserve: everything not guaranteed to anyone.
	reserve := make([]float64, R)
	copy(reserve, pb.capacity)
	for i, f := range pb.fns {
		if f.critical || fr.admitted[i] {
			for j, q := range pb.row(guarantee, i) {
				reserve[j] -= q
			}
		}
	}
	for j := range reserve {
		reserve[j] = math.Max(0, reserve[j])
	}

	plan := pb.build(p.margin, guarantee, reserve, fr, p.workers)
	p.log.DebugContext(ctx, "partition: planned",
		"functions", len(pb.fns), "allocations", len(plan.Allocations),
		"does_not_fit", len(plan.DoesNotFit), "reserve", plan.Reserve.String())
	return plan, nil
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
	e := &ShortfallError{Shortfall: short, Need: pb.vector(critical, nil), Capacity: pb.vector(pb.capacity, nil)}
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
