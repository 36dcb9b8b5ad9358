package partition

import (
	"context"
	"fmt"
	"math"
	"math/big"
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
// The sums are exact until the one rounding at the end (see exactSum), so
// that they do not depend, to the last bit, on the order of the
// functions, which is their name order: a plan must not change when
// functions are renamed.
func (pb *problem) sum(v []float64, pick func(i int) bool) []float64 {
	R := len(pb.res)
	acc := make([]exactSum, R)
	for i := range pb.fns {
		if pick(i) {
			for j, q := range v[i*R : (i+1)*R] {
				acc[j].add(q)
			}
		}
	}
	sums := make([]float64, R)
	for j := range acc {
		sums[j] = acc[j].float64()
	}
	return sums
}

// exactSum adds finite float64 values without rounding: every float64 is
// an integer multiple of 2^-1074, so the sum is kept as that integer, in
// 32-bit digits held in int64 limbs (each can take 2^31 additions before
// it could overflow). The result is rounded once, to the nearest float64,
// so it is the same whatever the order of the additions.
type exactSum struct {
	limbs  [68]int64 // digit k weighs 2^(32k-1074)
	n      int
	lo, hi int // the limbs in use are [lo, hi)
}

func (s *exactSum) add(x float64) {
	if x == 0 {
		return
	}
	b := math.Float64bits(x)
	e := int(b >> 52 & 0x7ff)
	m := b & (1<<52 - 1)
	if e > 0 {
		m |= 1 << 52
		e--
	}
	// |x| = m * 2^(e-1074), m < 2^53, 0 <= e <= 2045
	k, off := e/32, uint(e%32)
	hi, lo := m>>(64-off), m<<off // m<<off as a 128-bit number
	if off == 0 {
		hi = 0
	}
	sign := int64(1)
	if b>>63 == 1 {
		sign = -1
	}
	if s.lo == s.hi {
		s.lo, s.hi = k, k+3
	} else {
		s.lo, s.hi = min(s.lo, k), max(s.hi, k+3)
	}
	s.limbs[k] += sign * int64(lo&0xffffffff)
	s.limbs[k+1] += sign * int64(lo>>32)
	s.limbs[k+2] += sign * int64(hi&0xffffffff)
	if s.n++; s.n == 1<<30 {
		s.carry()
	}
}

// carry moves each limb's excess over 32 bits into the next one.
func (s *exactSum) carry() {
	s.lo, s.hi = 0, len(s.limbs)
	for k := range len(s.limbs) - 1 {
		c := s.limbs[k] >> 32 // arithmetic shift: floor division by 2^32
		s.limbs[k] -= c << 32
		s.limbs[k+1] += c
	}
	s.n = 0
}

func (s *exactSum) float64() float64 {
	if s.lo == s.hi {
		return 0
	}
	total := new(big.Int)
	d := new(big.Int)
	for k := s.hi - 1; k >= s.lo; k-- {
		total.Lsh(total, 32)
		total.Add(total, d.SetInt64(s.limbs[k]))
	}
	f := new(big.Float).SetInt(total) // exact: the precision grows to fit
	f.SetMantExp(f, 32*s.lo-1074)
	r, _ := f.Float64() // nearest, ties to even
	return r
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
