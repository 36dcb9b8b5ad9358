package partition

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/updraft-dev/updraft/hal"
)

// build turns the dense result into a Plan, using up to workers
// goroutines (see split).
//
// Every map of the plan is made at its final size and filled straight
// from the dense rows. The explanations are not written here: the plan
// keeps what it takes to write them (see [Plan.Explain]), which for
// 100 000 functions saves a string each and a map of them. Only the
// misfits' reasons, which are fields of the plan, are written now, one
// buffer per chunk of functions, each reason a slice of its chunk's
// string.
func (pb *problem) build(margin float64, guarantee, reserve []float64, fr fillResult, workers int) Plan {
	R := len(pb.res)
	misfits := pb.rankMisfits(fr)
	plan := Plan{
		Allocations: make([]hal.Allocation, len(pb.fns)-len(misfits)),
		Reserve:     pb.vector(reserve, nil),
		DoesNotFit:  make([]Misfit, len(misfits)),
	}
	// allocated[k] is the function of allocation k; allocations are in
	// function (name) order.
	allocated := make([]int32, 0, len(plan.Allocations))
	for i, f := range pb.fns {
		if f.critical || fr.admitted[i] {
			allocated = append(allocated, int32(i))
		}
	}
	// Every allocation and misfit owns its maps, so chunks of them are
	// built at once.
	split(len(allocated), workers, func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			i := int(allocated[k])
			f := pb.fns[i]
			g, named := pb.row(guarantee, i), pb.named[i*R:(i+1)*R]
			a := hal.Allocation{Function: f.name, Guarantee: pb.vector(g, named)}
			if f.critical {
				a.Limit = make(hal.Vector, len(a.Guarantee))
				for j, q := range g {
					if named[j] {
						a.Limit[pb.res[j]] = pb.limit(q, reserve[j], j)
					}
				}
			} else {
				a.Limit = a.Guarantee.Clone() // its own map: callers may change one and not the other
			}
			plan.Allocations[k] = a
		}
	})

	why := &explainer{
		res: pb.res, fns: pb.fns, named: pb.named, guarantee: guarantee, reserve: reserve,
		margin: margin, fr: fr, rank: make([]int32, len(pb.fns)), misfits: len(misfits),
	}
	why.fr.admitted, why.fr.events, why.fr.late = nil, nil, nil // not needed to explain; let them go
	for k, i := range misfits {
		why.rank[i] = int32(k + 1)
	}
	for i, late := range fr.late {
		if late {
			why.rank[i] = -1
		}
	}
	// Misfits are visited in name order, not rank order, so that their
	// rows are read in the order they lie in memory; each goes to its
	// rank's place in DoesNotFit.
	split(len(pb.fns), workers, func(_, lo, hi int) {
		n := 0
		for _, r := range why.rank[lo:hi] {
			if r > 0 {
				n++
			}
		}
		if n == 0 {
			return
		}
		type written struct{ fn, end int }
		mine := make([]written, 0, n)
		for i := lo; i < hi; i++ {
			if why.rank[i] > 0 {
				mine = append(mine, written{fn: i})
			}
		}
		// The reasons of a chunk are written one after another into
		// text, a builder whose String does not copy, then sliced out.
		w := writer{res: pb.res, buf: make([]byte, 0, 256)}
		var text strings.Builder
		text.Grow((reasonLen + w.bottleneckLen(fr)) * len(mine))
		for k, m := range mine {
			w.buf = w.buf[:0]
			w.misfit(pb.fns[m.fn], m.fn, fr)
			text.Write(w.buf)
			mine[k].end = text.Len()
		}
		all, start := text.String(), 0
		for _, m := range mine {
			plan.DoesNotFit[why.rank[m.fn]-1] = Misfit{Function: pb.fns[m.fn].name, Need: pb.need(m.fn), Reason: all[start:m.end]}
			start = m.end
		}
	})
	plan.why = why
	return plan
}

// limit is a critical function's limit on resource j: its guarantee g
// plus the reserve; on a resource of Options.Units, the reserve in whole
// steps, and no more than g if the sum is below the unit's minimum, so
// that the device accepts the limit too.
func (pb *problem) limit(g, reserve float64, j int) float64 {
	if st := pb.unitStep[j]; st > 0 {
		reserve = roundDown(reserve, st)
	}
	l := g + reserve
	if l < pb.umin[j] {
		return g // g is 0 here: a non-zero guarantee is at least the minimum
	}
	return l
}

// rankMisfits returns the non-critical functions neither pass admitted,
// ranked: the one that would join the fill last (highest join level)
// first, as it is the furthest from fitting locally; at one level the
// larger demand (canonical order, reversed) first; demands that differ
// only in name in name order.
func (pb *problem) rankMisfits(fr fillResult) []int {
	var misfits []int
	for i, f := range pb.fns {
		if !f.critical && !fr.admitted[i] {
			misfits = append(misfits, i)
		}
	}
	level := func(i int) float64 { return pb.fns[i].tau / pb.fns[i].weight }
	slices.SortFunc(misfits, func(a, b int) int {
		if c := cmp.Compare(level(b), level(a)); c != 0 {
			return c
		}
		return cmp.Or(pb.compareDemand(b, a), cmp.Compare(a, b))
	})
	return misfits
}

// need is a misfit's minimum over the resources it needs some of.
func (pb *problem) need(i int) hal.Vector {
	row, n := pb.row(pb.min, i), 0
	for _, q := range row {
		if q > 0 {
			n++
		}
	}
	v := make(hal.Vector, n)
	for j, q := range row {
		if q > 0 {
			v[pb.res[j]] = q
		}
	}
	return v
}

// explainer holds what [Plan.Explain] needs to put a function's allocation
// into words: the planner's dense rows (read only, never changed after
// the plan is built, so plans may be copied and explained concurrently)
// and where the fill stopped.
type explainer struct {
	res       []hal.Resource
	fns       []fn // sorted by name
	named     []bool
	guarantee []float64
	reserve   []float64
	margin    float64
	fr        fillResult // level, bottleneck and blocked only
	// rank is, per function, its 1-based rank among the misfits, 0 for a
	// function with an allocation, -1 for one the second pass admitted.
	rank    []int32
	misfits int
}

func (e *explainer) explain(function string) string {
	i, ok := slices.BinarySearchFunc(e.fns, function, func(f fn, name string) int {
		return strings.Compare(f.name, name)
	})
	if !ok {
		return ""
	}
	R := len(e.res)
	f := e.fns[i]
	w := writer{res: e.res, buf: make([]byte, 0, 160)}
	switch {
	case e.rank[i] > 0:
		w.misfit(f, i, e.fr)
		w.str("; candidate ")
		w.int(int(e.rank[i]))
		w.str(" of ")
		w.int(e.misfits)
		w.str(" to migrate or degrade")
	case e.rank[i] < 0:
		w.late(f, e.fr)
	case f.critical:
		w.critical(e.margin, e.guarantee[i*R:(i+1)*R], e.reserve, e.named[i*R:(i+1)*R])
	default:
		w.fair(f, e.fr)
	}
	return string(w.buf)
}

// writer appends explanations to buf.
type writer struct {
	res []hal.Resource
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
		r := w.res[j]
		w.buf = append(w.buf, r...)
		w.buf = append(w.buf, '=')
		w.buf = appendQuantity(w.buf, r, q)
	}
}

// reasonLen is about the length of a misfit's reason, less the name of
// the bottleneck resource: a little above, so that the reasons of a plan
// seldom outgrow the buffer sized for them.
const reasonLen = 190

func (w *writer) bottleneckLen(fr fillResult) int {
	if fr.bottleneck < 0 {
		return len("nothing")
	}
	return len(w.res[fr.bottleneck])
}

func (w *writer) bottleneck(fr fillResult) {
	if fr.bottleneck < 0 {
		w.str("nothing")
		return
	}
	w.str(string(w.res[fr.bottleneck]))
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

func (w *writer) misfit(f fn, i int, fr fillResult) {
	w.str("non-critical, weight ")
	w.num(f.weight)
	w.str(": needs at least ")
	w.percent(f.tau)
	w.str(" of its forecast peak")
	if i == fr.blocked {
		w.str("; not enough ")
		w.bottleneck(fr)
		w.str(" left when the fair fill reached it, nor after it")
		return
	}
	w.str("; the fair fill stopped at ")
	w.percent(share(f.weight, fr.level))
	w.str(" (")
	w.bottleneck(fr)
	w.str(") before it joined, and what the fill left has not enough ")
	w.str(string(w.res[fr.short[i]]))
	w.str(" for its minimum")
}

// late explains a function the second pass admitted.
func (w *writer) late(f fn, fr fillResult) {
	w.str("non-critical, weight ")
	w.num(f.weight)
	w.str(": given its minimum (")
	w.percent(f.tau)
	w.str(" of its forecast peak), which fits in what the fair fill left; the fill stopped at ")
	w.percent(share(f.weight, fr.level))
	w.str(" (")
	w.bottleneck(fr)
	w.str(") before it joined")
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
