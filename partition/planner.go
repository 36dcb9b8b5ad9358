package partition

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

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
	pb, err := p.prepare(capacity, demands)
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
	fr := fill(pb, avail)
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

	plan := pb.build(p.margin, guarantee, reserve, fr)
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

// build turns the dense result into a Plan with explanations.
func (pb *problem) build(margin float64, guarantee, reserve []float64, fr fillResult) Plan {
	R := len(pb.res)
	plan := Plan{
		Reserve:      pb.vector(reserve, nil),
		Explanations: make(map[string]string, len(pb.fns)),
	}
	ex := explainer{pb: pb, margin: margin, fr: fr, reserve: plan.Reserve}
	var misfits []int
	plan.Allocations = make([]hal.Allocation, 0, len(pb.fns))
	for i, f := range pb.fns {
		named := pb.named[i*R : (i+1)*R]
		if !f.critical && !fr.admitted[i] {
			misfits = append(misfits, i)
			continue
		}
		g := pb.vector(pb.row(guarantee, i), named)
		var l hal.Vector
		if f.critical {
			l = make(hal.Vector, len(g))
			for r, q := range g {
				l[r] = q + plan.Reserve[r]
			}
			plan.Explanations[f.name] = ex.critical(i, g, l)
		} else {
			l = g.Clone()
			plan.Explanations[f.name] = ex.fair(i, g)
		}
		plan.Allocations = append(plan.Allocations, hal.Allocation{Function: f.name, Guarantee: g, Limit: l})
	}

	// Rank misfits: the one that would be admitted last (highest admission
	// level) first; it is the furthest from fitting locally.
	slices.SortStableFunc(misfits, func(a, b int) int {
		fa, fb := pb.fns[a], pb.fns[b]
		return cmp.Compare(fb.tau/fb.weight, fa.tau/fa.weight)
	})
	plan.DoesNotFit = make([]Misfit, len(misfits))
	for k, i := range misfits {
		named := pb.named[i*R : (i+1)*R]
		m := Misfit{Function: pb.fns[i].name, Need: pb.vector(pb.row(pb.min, i), named)}
		m.Reason = ex.misfit(i, m.Need)
		plan.DoesNotFit[k] = m
		plan.Explanations[m.Function] = fmt.Sprintf("%s (ranked %d of %d candidates to migrate or degrade)", m.Reason, k+1, len(misfits))
	}
	return plan
}

// explainer writes the per-function explanations.
type explainer struct {
	pb      *problem
	margin  float64
	fr      fillResult
	reserve hal.Vector
}

func (ex explainer) critical(i int, g, l hal.Vector) string {
	var b strings.Builder
	b.WriteString("critical: guaranteed its forecast peak")
	if ex.margin > 0 {
		fmt.Fprintf(&b, " plus the %s margin", percent(ex.margin))
	}
	fmt.Fprintf(&b, " (%s); may burst into the reserve up to %s", g, l)
	return b.String()
}

func (ex explainer) fair(i int, g hal.Vector) string {
	f := ex.pb.fns[i]
	t := share(f.weight, ex.fr.level)
	if t >= 1 {
		return fmt.Sprintf("non-critical, weight %s: given its full forecast peak (%s), capped there", num(f.weight), g)
	}
	return fmt.Sprintf("non-critical, weight %s: fair share is %s of its forecast peak (%s), capped there; it needs at least %s to work; %s ran out first",
		num(f.weight), percent(t), g, percent(f.tau), ex.bottleneck())
}

func (ex explainer) misfit(i int, need hal.Vector) string {
	f := ex.pb.fns[i]
	if i == ex.fr.blocked {
		return fmt.Sprintf("non-critical, weight %s: its minimum (%s) does not fit in what is left of %s after critical functions, the reserve and fairer-ranked functions",
			num(f.weight), need, ex.bottleneck())
	}
	return fmt.Sprintf("non-critical, weight %s: its minimum (%s) is %s of its forecast peak, more than the fair share of %s reached before %s ran out",
		num(f.weight), need, percent(f.tau), percent(share(f.weight, ex.fr.level)), ex.bottleneck())
}

func (ex explainer) bottleneck() string {
	if ex.fr.bottleneck < 0 {
		return "nothing"
	}
	return string(ex.pb.res[ex.fr.bottleneck])
}

func percent(f float64) string {
	return num(math.Round(f*1000)/10) + "%"
}

func num(f float64) string {
	return fmt.Sprint(f)
}
