package partition

import (
	"cmp"
	"math"
	"slices"
)

// fillResult is the outcome of the weighted fair fill among non-critical
// functions.
type fillResult struct {
	// level is the fill level reached: a non-critical function i that was
	// admitted gets min(1, weight_i*level) of its peak. +Inf when every
	// admitted function reached its peak.
	level float64
	// admitted, per function index (critical ones are false).
	admitted []bool
	// bottleneck is the index of the resource that stopped the fill, -1
	// when nothing stopped it.
	bottleneck int
	// blocked is the index of the function whose minimum did not fit when
	// the fill reached its admission level, -1 when the fill stopped
	// between admissions (or did not stop).
	blocked int
	// events are the fill's events sorted by level, and next the index of
	// the first one the fill did not carry out (len(events) when it did not
	// stop). The admissions from next on are exactly the non-critical
	// functions not admitted, in order of the level at which they would
	// have joined.
	events []event
	next   int
	// late marks, per function, the non-critical functions the fill did
	// not admit that the second pass did (see fits): they hold their
	// minimum. short is, for each function neither pass admitted, the
	// index of the resource its minimum lacked in the second pass.
	late  []bool
	short []int32
}

// event is a point where the fill's consumption changes slope: a function
// is admitted (jumps from nothing to its minimum) or saturates (reaches
// its peak and stops growing).
type event struct {
	at float64 // fill level
	// order is 2*function for an admission, 2*function+1 for a
	// saturation. At one level, events go in the canonical order of their
	// functions (see problem.compare), never in name order, and a
	// function's admission comes before its saturation.
	order int
}

func (e event) fn() int     { return e.order >> 1 }
func (e event) admit() bool { return e.order&1 == 0 }

// fill raises one common level L. At level L, non-critical function i,
// once admitted, holds t_i = min(1, w_i*L) of its peak vector; it is
// admitted at L = tau_i/w_i, where t_i first covers its minimum on every
// resource. L rises until a resource of avail is exhausted or the next
// admission does not fit; every later function is not admitted.
//
// Each holding is a non-decreasing function of L, and the level reached is
// a non-decreasing function of avail, so more capacity never shrinks an
// allocation (see the package documentation for why the fill stops at the
// first misfit instead of skipping it).
func fill(pb *problem, avail []float64, s *scratch) fillResult {
	R := len(pb.res)
	res := fillResult{admitted: make([]bool, len(pb.fns)), bottleneck: -1, blocked: -1}
	events := resize(s.events, 2*len(pb.fns))[:0]
	for i, f := range pb.fns {
		if f.critical {
			continue
		}
		events = append(events, event{at: f.tau / f.weight, order: 2 * i})
		if f.tau < 1 {
			events = append(events, event{at: 1 / f.weight, order: 2*i + 1})
		}
	}
	// A stable sort by level, then each run of equal levels put in the
	// canonical order of its functions: which of several functions that
	// join at one level is tried first must not depend on their names.
	// (A saturation is continuous, so where it falls among admissions of
	// the same level does not change what fits; it is ordered all the
	// same, so that the sums below add up in an order names do not
	// change.)
	s.events = events
	s.buf = resize(s.buf, len(events))
	events = sortByLevel(events, s.buf)
	pb.orderTies(events)
	res.events = events

	// Consumption at level L is base + L*slope, per resource.
	base := make([]float64, R)
	slope := make([]float64, R)
	level := 0.0
	for k, e := range events {
		if e.at > level {
			if stop, r := reach(base, slope, avail, e.at); stop < e.at {
				res.level, res.bottleneck, res.next = math.Max(level, stop), r, k
				return res
			}
			level = e.at
		}
		i := e.fn()
		f := pb.fns[i]
		d := pb.row(pb.peak, i)
		if !e.admit() {
			if !res.admitted[i] {
				continue
			}
			for j, q := range d {
				base[j] += q
				slope[j] -= f.weight * q
			}
			continue
		}
		over := -1
		for j, q := range d {
			if q == 0 {
				continue
			}
			var used float64
			if f.tau >= 1 {
				used = base[j] + q + level*slope[j]
			} else {
				used = base[j] + level*(slope[j]+f.weight*q)
			}
			if used > avail[j] {
				over = j
				break
			}
		}
		if over >= 0 {
			res.level, res.bottleneck, res.blocked, res.next = level, over, i, k
			return res
		}
		for j, q := range d {
			if f.tau >= 1 {
				base[j] += q
			} else {
				slope[j] += f.weight * q
			}
		}
		res.admitted[i] = true
	}
	res.level, res.next = math.Inf(1), len(events)
	return res
}

// safety shrinks a level computed to exhaust a resource exactly, so that
// rounding in the sums that follow cannot overshoot the capacity.
const safety = 1 - 1e-12

// reach returns the highest level up to target at which base+L*slope stays
// within avail on every resource, and the resource that stops it (-1 when
// target is reached).
func reach(base, slope, avail []float64, target float64) (float64, int) {
	stop, by := target, -1
	for j, s := range slope {
		if s <= 0 || base[j]+target*s <= avail[j] {
			continue
		}
		if l := (avail[j] - base[j]) / s * safety; l < stop {
			stop, by = l, j
		}
	}
	return stop, by
}

// share returns the fraction of its peak that admitted non-critical
// function i holds at level.
func share(weight, level float64) float64 {
	return math.Min(1, weight*level)
}

// sortByLevel sorts events by level, keeping the order of events of equal
// level: a least-significant-digit radix sort on the bits of the level,
// which order like the levels themselves because levels are never
// negative. It is linear, where a comparison sort of the 200 000 events
// of 100 000 functions took most of the fill's time. Digits are 11 bits
// wide (six passes), all counted in one read of the events, and a digit
// every level shares is skipped. buf, when as long as events, is used as
// the second buffer the sort needs; the result is in events or in buf.
func sortByLevel(events, buf []event) []event {
	if len(events) < 256 {
		slices.SortStableFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
		return events
	}
	const (
		bits   = 11
		size   = 1 << bits
		mask   = size - 1
		passes = (64 + bits - 1) / bits
	)
	count := make([]int, passes*size)
	for _, e := range events {
		b := math.Float64bits(e.at)
		for p := range passes {
			count[p*size+int(b>>(p*bits)&mask)]++
		}
	}
	src := events
	for p := range passes {
		c := count[p*size : (p+1)*size]
		shift := p * bits
		if c[int(math.Float64bits(src[0].at)>>shift&mask)] == len(src) {
			continue // every level has the same digit here
		}
		if len(buf) < len(events) {
			buf = make([]event, len(events))
		}
		dst := buf[:len(events)]
		pos := 0
		for d, n := range c {
			c[d] = pos
			pos += n
		}
		for _, e := range src {
			d := int(math.Float64bits(e.at) >> shift & mask)
			dst[c[d]] = e
			c[d]++
		}
		src, buf = dst, src
	}
	return src
}

// orderTies sorts each run of events of equal level (events are sorted by
// level) so that names play no part: the run's admissions first, smallest
// function first (compare), then its saturations, ordered by a hash of
// the function's demand (compareDemand on a collision). Where a
// saturation falls among admissions of its level does not change what
// fits; it is ordered all the same, so that the fill's sums add up in an
// order that renaming cannot change. (The hash is cheaper than compare,
// and saturations often tie by the thousand: every function that reaches
// its peak at level 1/w.)
func (pb *problem) orderTies(events []event) {
	for lo := 0; lo < len(events); {
		hi := lo + 1
		for hi < len(events) && events[hi].at == events[lo].at {
			hi++
		}
		if hi-lo > 1 {
			pb.orderRun(events[lo:hi])
		}
		lo = hi
	}
}

// orderRun orders one run of events of equal level (see orderTies).
func (pb *problem) orderRun(run []event) {
	type keyed struct {
		key uint64
		e   event
	}
	var admits []event
	var sats []keyed
	for _, e := range run {
		if e.admit() {
			admits = append(admits, e)
		} else {
			sats = append(sats, keyed{pb.demandHash(e.fn()), e})
		}
	}
	slices.SortFunc(admits, func(a, b event) int { return pb.compare(a.fn(), b.fn()) })
	slices.SortFunc(sats, func(a, b keyed) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return pb.compare(a.e.fn(), b.e.fn())
	})
	n := copy(run, admits)
	for k, s := range sats {
		run[n+k] = s.e
	}
}

// demandHash is an FNV-1a hash of what compareDemand compares: equal
// demands hash equal, and names play no part.
func (pb *problem) demandHash(i int) uint64 {
	h := uint64(14695981039346656037)
	mix := func(x uint64) {
		for range 8 {
			h ^= x & 0xff
			h *= 1099511628211
			x >>= 8
		}
	}
	for _, q := range pb.row(pb.min, i) {
		mix(math.Float64bits(q))
	}
	for _, q := range pb.row(pb.peak, i) {
		mix(math.Float64bits(q))
	}
	mix(math.Float64bits(pb.fns[i].weight))
	R := len(pb.res)
	for _, n := range pb.named[i*R : (i+1)*R] {
		if n {
			mix(1)
		} else {
			mix(0)
		}
	}
	return h
}

// compare is the canonical order of functions, which decides between
// functions that join the fill at the same level and, after the size, the
// order of the second pass. It compares, resource by resource in resource
// name order, the minimum rows, then the peak rows, then the weight, then
// which resources the demands name: smaller first. Only functions equal
// in all of these, whose demands are the same, are left in name order
// (the order of their indices), which is the only thing that tells them
// apart.
func (pb *problem) compare(a, b int) int {
	return cmp.Or(pb.compareDemand(a, b), cmp.Compare(a, b))
}

// compareDemand is compare without the last tie-break: 0 for functions
// whose demands are the same but for the name.
func (pb *problem) compareDemand(a, b int) int {
	if c := slices.Compare(pb.row(pb.min, a), pb.row(pb.min, b)); c != 0 {
		return c
	}
	if c := slices.Compare(pb.row(pb.peak, a), pb.row(pb.peak, b)); c != 0 {
		return c
	}
	if c := cmp.Compare(pb.fns[a].weight, pb.fns[b].weight); c != 0 {
		return c
	}
	R := len(pb.res)
	na, nb := pb.named[a*R:(a+1)*R], pb.named[b*R:(b+1)*R]
	for j := range na {
		if na[j] != nb[j] {
			if !na[j] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// fits is the second pass: after the fill stopped, every non-critical
// function it did not admit is tried again, smallest first (the largest
// fraction of the capacity its minimum takes on any resource, then the
// canonical order), and admitted with exactly its minimum if that fits in
// what is still free: avail less every guarantee given so far (free, which
// it updates). guarantee holds the fill's guarantees, rounded; the
// admitted functions' rows are set to their minimum. It marks them
// admitted and late, and records in short, for each function left out,
// the resource it lacked.
func (pb *problem) fits(fr *fillResult, free, guarantee []float64) {
	var rest []int
	for i, f := range pb.fns {
		if !f.critical && !fr.admitted[i] {
			rest = append(rest, i)
		}
	}
	fr.late = make([]bool, len(pb.fns))
	fr.short = make([]int32, len(pb.fns))
	if len(rest) == 0 {
		return
	}
	size := make([]float64, len(pb.fns))
	for _, i := range rest {
		s := 0.0
		for j, q := range pb.row(pb.min, i) {
			switch {
			case q == 0:
			case pb.capacity[j] == 0:
				s = math.Inf(1)
			default:
				s = math.Max(s, q/pb.capacity[j])
			}
		}
		size[i] = s
	}
	slices.SortFunc(rest, func(a, b int) int {
		if c := cmp.Compare(size[a], size[b]); c != 0 {
			return c
		}
		return pb.compare(a, b)
	})
	for _, i := range rest {
		m := pb.row(pb.min, i)
		over := -1
		for j, q := range m {
			if q > 0 && q > free[j] {
				over = j
				break
			}
		}
		if over >= 0 {
			fr.short[i] = int32(over)
			continue
		}
		for j, q := range m {
			free[j] -= q
		}
		copy(pb.row(guarantee, i), m)
		fr.admitted[i], fr.late[i] = true, true
	}
}
