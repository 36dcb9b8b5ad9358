package partition

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/updraft-dev/updraft/hal"
)

// build turns the dense result into a Plan with explanations.
//
// Explanations are written into one buffer and sliced out of one string,
// so that a plan of 100 000 functions costs one allocation for its words
// rather than one per function.
func (pb *problem) build(margin float64, guarantee, reserve []float64, fr fillResult) Plan {
	R := len(pb.res)
	plan := Plan{
		Reserve:      pb.vector(reserve, nil),
		Explanations: make(map[string]string, len(pb.fns)),
	}
	w := writer{pb: pb, buf: make([]byte, 0, 128*len(pb.fns))}
	type span struct{ fn, start, mid, end int }
	spans := make([]span, 0, len(pb.fns))
	var misfits []int
	plan.Allocations = make([]hal.Allocation, 0, len(pb.fns))
	for i, f := range pb.fns {
		named := pb.named[i*R : (i+1)*R]
		if !f.critical && !fr.admitted[i] {
			misfits = append(misfits, i)
			continue
		}
		g := pb.row(guarantee, i)
		a := hal.Allocation{Function: f.name, Guarantee: pb.vector(g, named)}
		start := len(w.buf)
		if f.critical {
			a.Limit = make(hal.Vector, len(a.Guarantee))
			for r, q := range a.Guarantee {
				a.Limit[r] = q + plan.Reserve[r]
			}
			w.critical(margin, g, reserve, named)
		} else {
			a.Limit = a.Guarantee.Clone()
			w.fair(f, fr)
		}
		spans = append(spans, span{fn: i, start: start, end: len(w.buf)})
		plan.Allocations = append(plan.Allocations, a)
	}

	// Rank misfits: the one that would join last (highest join level)
	// first; it is the furthest from fitting locally. Ties keep name order.
	type ranked struct {
		join float64 // level at which the function would join
		fn   int
	}
	order := make([]ranked, len(misfits))
	for k, i := range misfits {
		order[k] = ranked{pb.fns[i].tau / pb.fns[i].weight, i}
	}
	slices.SortFunc(order, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.join, a.join), a.fn-b.fn)
	})
	for k, r := range order {
		misfits[k] = r.fn
	}
	plan.DoesNotFit = make([]Misfit, len(misfits))
	for k, i := range misfits {
		start := len(w.buf)
		w.misfit(i, fr)
		mid := len(w.buf)
		w.str("; candidate ")
		w.int(k + 1)
		w.str(" of ")
		w.int(len(misfits))
		w.str(" to migrate or degrade")
		spans = append(spans, span{fn: i, start: start, mid: mid, end: len(w.buf)})
		plan.DoesNotFit[k] = Misfit{Function: pb.fns[i].name, Need: pb.need(i)}
	}

	text := string(w.buf)
	k := 0
	for _, s := range spans {
		plan.Explanations[pb.fns[s.fn].name] = text[s.start:s.end]
		if s.mid > 0 {
			plan.DoesNotFit[k].Reason = text[s.start:s.mid]
			k++
		}
	}
	return plan
}

// need is a misfit's minimum over the resources it needs some of.
func (pb *problem) need(i int) hal.Vector {
	v := hal.Vector{}
	for j, q := range pb.row(pb.min, i) {
		if q > 0 {
			v[pb.res[j]] = q
		}
	}
	return v
}

// writer appends explanations to buf.
type writer struct {
	pb  *problem
	buf []byte
}

func (w *writer) str(s string) { w.buf = append(w.buf, s...) }

func (w *writer) int(n int) { w.buf = strconv.AppendInt(w.buf, int64(n), 10) }

func (w *writer) num(f float64) {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		w.int(int(f))
		return
	}
	w.buf = strconv.AppendFloat(w.buf, f, 'g', 6, 64)
}

// percent writes f as a percentage with one decimal: 0.6667 is "66.7%".
func (w *writer) percent(f float64) {
	tenths := int(math.Round(f * 1000))
	w.int(tenths / 10)
	if d := tenths % 10; d != 0 {
		w.buf = append(w.buf, '.', byte('0'+d))
	}
	w.buf = append(w.buf, '%')
}

// vector writes row like hal.Vector.String does, over the named resources
// (all when named is nil); add, if not nil, is added to each quantity.
func (w *writer) vector(row, add []float64, named []bool) {
	first := true
	for j, q := range row {
		if named != nil && !named[j] {
			continue
		}
		if add != nil {
			q += add[j]
		}
		if !first {
			w.buf = append(w.buf, ' ')
		}
		first = false
		r := w.pb.res[j]
		w.buf = append(w.buf, r...)
		w.buf = append(w.buf, '=')
		w.buf = appendQuantity(w.buf, r, q)
	}
}

func (w *writer) bottleneck(fr fillResult) {
	if fr.bottleneck < 0 {
		w.str("nothing")
		return
	}
	w.str(string(w.pb.res[fr.bottleneck]))
}

func (w *writer) critical(margin float64, g, reserve []float64, named []bool) {
	w.str("critical: guaranteed its forecast peak")
	if margin > 0 {
		w.str(" plus the ")
		w.percent(margin)
		w.str(" margin")
	}
	w.str(" (")
	w.vector(g, nil, named)
	w.str("); may burst into the reserve up to ")
	w.vector(g, reserve, named)
}

func (w *writer) fair(f fn, fr fillResult) {
	w.str("non-critical, weight ")
	w.num(f.weight)
	t := share(f.weight, fr.level)
	if t >= 1 {
		w.str(": its full forecast peak")
		return
	}
	w.str(": fair share ")
	w.percent(t)
	w.str(" of its forecast peak (needs ")
	w.percent(f.tau)
	w.str("); the fill stopped at ")
	w.bottleneck(fr)
}

func (w *writer) misfit(i int, fr fillResult) {
	f := w.pb.fns[i]
	w.str("non-critical, weight ")
	w.num(f.weight)
	w.str(": needs at least ")
	w.percent(f.tau)
	w.str(" of its forecast peak")
	if i == fr.blocked {
		w.str("; not enough ")
		w.bottleneck(fr)
		w.str(" left when the fair fill reached it")
		return
	}
	w.str("; the fair fill stopped at ")
	w.percent(share(f.weight, fr.level))
	w.str(" (")
	w.bottleneck(fr)
	w.str(")")
}

// appendQuantity appends q in the unit of r, as hal.FormatQuantity formats
// it, without allocating.
func appendQuantity(buf []byte, r hal.Resource, q float64) []byte {
	switch r {
	case hal.CPU:
		buf = strconv.AppendFloat(buf, q, 'f', -1, 64)
		return append(buf, " cores"...)
	case hal.Memory:
		return appendBytes(buf, q)
	case hal.IO:
		return append(appendBytes(buf, q), "/s"...)
	default:
		return strconv.AppendFloat(buf, q, 'g', 6, 64)
	}
}

func appendBytes(buf []byte, q float64) []byte {
	const unit = 1024
	units := [...]string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(q) >= unit && i < len(units)-1 {
		q /= unit
		i++
	}
	buf = strconv.AppendFloat(buf, q, 'g', 4, 64)
	return append(buf, units[i]...)
}
