// Package haltest is a conformance suite for hal drivers, in the manner of
// testing/fstest: a driver's author runs [TestDevice] in the driver's own
// tests, and the suite checks what every caller of a [hal.Device] relies
// on:
//
//   - Capacity is valid (no negative, NaN or infinite quantity), names at
//     least one resource, and is the same on every call, before an Apply
//     and after its Undo.
//   - Apply then Undo leaves the device's observable state (what
//     [Options.State] returns, compared with go-cmp) exactly as before, and
//     nested Applies undo in reverse order to each earlier state.
//   - Undo is idempotent (a second call returns nil and changes nothing)
//     and retryable (after a call that failed, here on a cancelled
//     context, a later call restores the state).
//   - A [hal.Journaled] device: a journal that fails at any of its calls
//     leaves nothing changed and its error is returned (errors.Is); the
//     last record undoes exactly with UndoRecord, twice, after the Undo,
//     and, when [Options.Reopen] is set, in a second instance opened on the
//     same device as a new process would; a record that is not one is
//     refused and changes nothing.
//   - A [hal.Units] device refuses an amount that is not whole in a
//     resource's unit with an error matching [hal.ErrNotInUnits] that names
//     the resource, and changes nothing.
//   - What the device cannot enforce is refused with an error naming the
//     resource, changing nothing: a resource it does not have, and a
//     guarantee beyond its capacity; a batch in which one allocation is
//     refused changes nothing either.
//
// The suite allocates to the functions [Options.Functions] names (two by
// default) amounts derived from Capacity and, for a [hal.Units] device,
// rounded to its units. It never calls t.Fatal or t.FailNow itself (open
// may): each check reports with t.Errorf and stops.
//
// A driver's test:
//
//	func TestConformance(t *testing.T) {
//		haltest.TestDevice(t, func(t testing.TB) hal.Device { return mydriver.New(...) },
//			haltest.Options{State: func(d hal.Device) (any, error) { return d.(*mydriver.Device).Snapshot(), nil }})
//	}
package haltest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft/hal"
)

// Options configures [TestDevice].
type Options struct {
	// State returns the device's observable state: everything Apply may
	// change, in a form go-cmp compares (for hal/sim its allocations; for
	// a cgroup driver the values of the files it writes). Nil compares
	// Capacity only, which checks little: set it.
	State func(d hal.Device) (any, error)
	// CmpOptions are passed to cmp.Diff when states are compared.
	CmpOptions []cmp.Option
	// Reopen, when set, returns a second instance of d's underlying
	// device, opened the way a new process would open it (the same state
	// file, cgroups, card). The Journaled checks then undo from the record
	// in that instance too.
	Reopen func(t testing.TB, d hal.Device) (hal.Device, error)
	// Functions are the functions the suite allocates to; at least two.
	// Nil means {"haltest-a", "haltest-b"}.
	Functions []string
	// Resources are the resources the suite allocates; nil means every
	// resource Capacity names.
	Resources []hal.Resource
}

// Unknown is the resource the suite asks for to check that a device
// refuses what it does not have.
const Unknown hal.Resource = "haltest.unknown"

// errJournal is what the suite's failing journal returns.
var errJournal = errors.New("haltest: journal refused")

// TestDevice runs the conformance checks on devices open returns: each
// call must return a new device (or the same one) in the same initial
// state, the state the previous check's device was left in. When t is a
// *testing.T each check is a subtest; otherwise (a testing.TB of the
// caller's own, as in haltest's tests) the checks run one after another
// and only t's Helper, Errorf and Logf are called, each failure prefixed by
// the check's name.
func TestDevice(t testing.TB, open func(t testing.TB) hal.Device, opts Options) {
	t.Helper()
	if len(opts.Functions) == 0 {
		opts.Functions = []string{"haltest-a", "haltest-b"}
	}
	if len(opts.Functions) < 2 {
		t.Errorf("haltest: Options.Functions names %d functions; the suite needs at least two", len(opts.Functions))
		return
	}
	checks := []struct {
		name string
		run  func(c *checker)
	}{
		{"Capacity", (*checker).capacity},
		{"ApplyUndo", (*checker).applyUndo},
		{"UndoIdempotentRetryable", (*checker).undoIdempotentRetryable},
		{"NestedUndo", (*checker).nestedUndo},
		{"Journaled", (*checker).journaled},
		{"Units", (*checker).units},
		{"Refusals", (*checker).refusals},
	}
	for _, ck := range checks {
		run := func(t testing.TB, prefix string) {
			c := &checker{t: t, prefix: prefix, opts: opts, ctx: context.Background()}
			c.dev = open(t)
			if c.dev == nil {
				c.errorf("open returned a nil device")
				return
			}
			ck.run(c)
		}
		if tt, ok := t.(*testing.T); ok {
			tt.Run(ck.name, func(t *testing.T) { run(t, "") })
		} else {
			run(t, ck.name+": ")
		}
	}
}

// checker runs one check on one device.
type checker struct {
	t      testing.TB
	prefix string
	opts   Options
	ctx    context.Context
	dev    hal.Device
}

func (c *checker) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("haltest: "+c.prefix+format, args...)
}

func (c *checker) errorf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("haltest: "+c.prefix+format, args...)
}

// state returns the observable state, or ok=false after reporting why not.
func (c *checker) state(d hal.Device) (s any, ok bool) {
	c.t.Helper()
	capacity, err := d.Capacity(c.ctx)
	if err != nil {
		c.errorf("Capacity: %v", err)
		return nil, false
	}
	st := struct {
		Capacity hal.Vector
		State    any
	}{Capacity: capacity}
	if c.opts.State != nil {
		if st.State, err = c.opts.State(d); err != nil {
			c.errorf("Options.State: %v", err)
			return nil, false
		}
	}
	return st, true
}

// same reports whether the state of d is want, reporting the difference.
func (c *checker) same(d hal.Device, want any, when string) bool {
	c.t.Helper()
	got, ok := c.state(d)
	if !ok {
		return false
	}
	if diff := cmp.Diff(want, got, c.opts.CmpOptions...); diff != "" {
		c.errorf("%s: the device's state differs from what it should be (-want +got):\n%s", when, diff)
		return false
	}
	return true
}

func (c *checker) capacity() {
	c.t.Helper()
	first, err := c.dev.Capacity(c.ctx)
	if err != nil {
		c.errorf("Capacity: %v", err)
		return
	}
	if len(first) == 0 {
		c.errorf("Capacity names no resource")
	}
	if err := first.Validate(); err != nil {
		c.errorf("Capacity %v is invalid: %v", first, err)
	}
	second, err := c.dev.Capacity(c.ctx)
	if err != nil {
		c.errorf("second Capacity: %v", err)
		return
	}
	if diff := cmp.Diff(first, second); diff != "" {
		c.errorf("Capacity is not stable between two calls (-first +second):\n%s", diff)
	}
	if u, ok := c.dev.(hal.Units); ok {
		for r, unit := range u.Units() {
			if err := unit.Validate(); err != nil {
				c.errorf("Units resource %q: %v", r, err)
			}
			if _, ok := first[r]; !ok {
				c.errorf("Units names resource %q, which Capacity does not", r)
			}
		}
	}
}

// allocations returns, for each function, a guarantee of frac and a limit
// of 2*frac of each resource's capacity, in the device's units.
func (c *checker) allocations(frac float64) ([]hal.Allocation, bool) {
	c.t.Helper()
	capacity, err := c.dev.Capacity(c.ctx)
	if err != nil {
		c.errorf("Capacity: %v", err)
		return nil, false
	}
	resources := c.opts.Resources
	if resources == nil {
		resources = capacity.Resources()
	}
	units := hal.UnitsOf(c.dev)
	var allocs []hal.Allocation
	for _, f := range c.opts.Functions[:2] {
		a := hal.Allocation{Function: f, Guarantee: hal.Vector{}, Limit: hal.Vector{}}
		for _, r := range resources {
			if g := roundDown(units[r], capacity[r]*frac); g > 0 {
				a.Guarantee[r] = g
			}
			if l := roundDown(units[r], capacity[r]*2*frac); l > 0 {
				a.Limit[r] = l
			}
		}
		allocs = append(allocs, a)
	}
	if allocs[0].Guarantee.IsZero() && allocs[0].Limit.IsZero() {
		c.errorf("the device's capacity %v leaves nothing to allocate", capacity)
		return nil, false
	}
	return allocs, true
}

// roundDown rounds q down to u's step, and to 0 below u's minimum.
func roundDown(u hal.Unit, q float64) float64 {
	if u.Step > 0 {
		q = math.Floor(q/u.Step+1e-9) * u.Step
	}
	if q < u.Min {
		return 0
	}
	return q
}

// roundUp rounds q up to u's step and to at least u's minimum.
func roundUp(u hal.Unit, q float64) float64 {
	if u.Step > 0 {
		q = math.Ceil(q/u.Step-1e-9) * u.Step
	}
	return max(q, u.Min)
}

func (c *checker) apply(allocs []hal.Allocation) (hal.Undo, bool) {
	c.t.Helper()
	undo, err := c.dev.Apply(c.ctx, allocs)
	if err != nil {
		c.errorf("Apply(%v): %v", allocs, err)
		return nil, false
	}
	if undo == nil {
		c.errorf("Apply returned a nil Undo with no error")
		return nil, false
	}
	return undo, true
}

func (c *checker) applyUndo() {
	c.t.Helper()
	before, ok := c.state(c.dev)
	if !ok {
		return
	}
	allocs, ok := c.allocations(0.25)
	if !ok {
		return
	}
	undo, ok := c.apply(allocs)
	if !ok {
		return
	}
	after, ok := c.state(c.dev)
	if !ok {
		return
	}
	if c.opts.State != nil && cmp.Equal(before, after, c.opts.CmpOptions...) {
		c.errorf("Apply(%v) changed nothing Options.State observes: State does not show what Apply does", allocs)
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("Undo: %v", err)
		return
	}
	c.same(c.dev, before, "after Apply and Undo")
}

func (c *checker) undoIdempotentRetryable() {
	c.t.Helper()
	before, ok := c.state(c.dev)
	if !ok {
		return
	}
	allocs, ok := c.allocations(0.25)
	if !ok {
		return
	}
	undo, ok := c.apply(allocs)
	if !ok {
		return
	}
	cancelled, cancel := context.WithCancel(c.ctx)
	cancel()
	if err := undo(cancelled); err != nil {
		c.logf("Undo on a cancelled context: %v (retrying)", err)
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("Undo after a call on a cancelled context: %v, want a retry that succeeds", err)
		return
	}
	if !c.same(c.dev, before, "after Undo") {
		return
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("second Undo after a successful one: %v, want nil", err)
	}
	c.same(c.dev, before, "after a second Undo")
}

func (c *checker) nestedUndo() {
	c.t.Helper()
	s0, ok := c.state(c.dev)
	if !ok {
		return
	}
	first, ok := c.allocations(0.25)
	if !ok {
		return
	}
	undo1, ok := c.apply(first)
	if !ok {
		return
	}
	s1, ok := c.state(c.dev)
	if !ok {
		return
	}
	second, ok := c.allocations(0.125)
	if !ok {
		return
	}
	second = second[:1] // the second function keeps the first Apply's
	undo2, ok := c.apply(second)
	if !ok {
		return
	}
	if err := undo2(c.ctx); err != nil {
		c.errorf("Undo of the second Apply: %v", err)
		return
	}
	if !c.same(c.dev, s1, "after undoing the second of two Applies") {
		return
	}
	if err := undo1(c.ctx); err != nil {
		c.errorf("Undo of the first Apply: %v", err)
		return
	}
	c.same(c.dev, s0, "after undoing both Applies")
}

// journaledApply applies allocs with ApplyJournaled, failing the journal
// at call failAt (0: never), and returns the last record and the calls.
func (c *checker) journaledApply(j hal.Journaled, allocs []hal.Allocation, failAt int) (undo hal.Undo, record []byte, calls int, err error) {
	undo, err = j.ApplyJournaled(c.ctx, allocs, func(r []byte) error {
		calls++
		if calls == failAt {
			return errJournal
		}
		record = slices.Clone(r)
		return nil
	})
	return undo, record, calls, err
}

func (c *checker) journaled() {
	c.t.Helper()
	j, ok := c.dev.(hal.Journaled)
	if !ok {
		c.logf("the device is not hal.Journaled: nothing to check")
		return
	}
	before, ok := c.state(c.dev)
	if !ok {
		return
	}
	allocs, ok := c.allocations(0.25)
	if !ok {
		return
	}

	// A successful run counts the journal's calls; then a journal failing
	// at each of them must leave nothing changed.
	undo, record, calls, err := c.journaledApply(j, allocs, 0)
	if err != nil {
		c.errorf("ApplyJournaled: %v", err)
		return
	}
	if calls == 0 || len(record) == 0 {
		c.errorf("ApplyJournaled changed the device without journaling a record (%d calls)", calls)
		return
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("Undo of ApplyJournaled: %v", err)
		return
	}
	if !c.same(c.dev, before, "after ApplyJournaled and its Undo") {
		return
	}
	for at := 1; at <= calls; at++ {
		undo, _, _, err := c.journaledApply(j, allocs, at)
		if !errors.Is(err, errJournal) {
			c.errorf("ApplyJournaled with a journal failing at call %d of %d: err = %v, want the journal's error (errors.Is)", at, calls, err)
			if err == nil && undo != nil {
				_ = undo(c.ctx)
			}
			return
		}
		if !c.same(c.dev, before, fmt.Sprintf("after ApplyJournaled whose journal failed at call %d of %d", at, calls)) {
			return
		}
	}

	// The record undoes, twice, and after the Undo.
	undo, record, _, err = c.journaledApply(j, allocs, 0)
	if err != nil {
		c.errorf("ApplyJournaled: %v", err)
		return
	}
	for i := range 2 {
		if err := j.UndoRecord(c.ctx, record); err != nil {
			c.errorf("UndoRecord (call %d): %v", i+1, err)
			return
		}
		if !c.same(c.dev, before, fmt.Sprintf("after UndoRecord (call %d)", i+1)) {
			return
		}
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("Undo after UndoRecord: %v, want nil", err)
	}
	if !c.same(c.dev, before, "after UndoRecord and then Undo") {
		return
	}
	undo, record, _, err = c.journaledApply(j, allocs, 0)
	if err != nil {
		c.errorf("ApplyJournaled: %v", err)
		return
	}
	if err := undo(c.ctx); err != nil {
		c.errorf("Undo: %v", err)
		return
	}
	if err := j.UndoRecord(c.ctx, record); err != nil {
		c.errorf("UndoRecord after Undo: %v, want nil", err)
	}
	if !c.same(c.dev, before, "after Undo and then UndoRecord") {
		return
	}

	// A record that is not one is refused and changes nothing.
	for _, bad := range [][]byte{[]byte("haltest: not a record"), {}, []byte("{}")} {
		if err := j.UndoRecord(c.ctx, bad); err == nil {
			c.errorf("UndoRecord(%q) = nil, want an error saying the record is not one", bad)
		}
	}
	if !c.same(c.dev, before, "after UndoRecord of bad records") {
		return
	}

	// In a second instance, as in a new process.
	if c.opts.Reopen == nil {
		c.logf("Options.Reopen is nil: UndoRecord in a new instance is not checked")
		return
	}
	_, record, _, err = c.journaledApply(j, allocs, 0)
	if err != nil {
		c.errorf("ApplyJournaled: %v", err)
		return
	}
	again, err := c.opts.Reopen(c.t, c.dev)
	if err != nil {
		c.errorf("Options.Reopen: %v", err)
		_ = j.UndoRecord(c.ctx, record)
		return
	}
	ja, ok := again.(hal.Journaled)
	if !ok {
		c.errorf("Options.Reopen returned a %T, which is not hal.Journaled", again)
		_ = j.UndoRecord(c.ctx, record)
		return
	}
	for i := range 2 {
		if err := ja.UndoRecord(c.ctx, record); err != nil {
			c.errorf("UndoRecord in a reopened device (call %d): %v", i+1, err)
			return
		}
		if !c.same(again, before, fmt.Sprintf("after UndoRecord in a reopened device (call %d)", i+1)) {
			return
		}
	}
}

// refused applies allocs, which must be refused with an error matching
// is (when not nil) whose text holds every string of says, and checks
// that nothing changed.
func (c *checker) refused(what string, allocs []hal.Allocation, before any, is error, says ...string) {
	c.t.Helper()
	undo, err := c.dev.Apply(c.ctx, allocs)
	if err == nil {
		c.errorf("%s: Apply(%v) = nil error, want a refusal", what, allocs)
		if undo != nil {
			if err := undo(c.ctx); err != nil {
				c.errorf("%s: Undo: %v", what, err)
			}
		}
		return
	}
	if is != nil && !errors.Is(err, is) {
		c.errorf("%s: Apply's error %q does not match %v (errors.Is)", what, err, is)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			c.errorf("%s: Apply's error %q does not name %s", what, err, s)
		}
	}
	c.same(c.dev, before, what+": after the refused Apply")
}

func (c *checker) units() {
	c.t.Helper()
	u, ok := c.dev.(hal.Units)
	if !ok {
		c.logf("the device is not hal.Units: nothing to check")
		return
	}
	before, ok := c.state(c.dev)
	if !ok {
		return
	}
	units := u.Units()
	f := c.opts.Functions[0]
	checked := 0
	for _, r := range sortedResources(units) {
		unit := units[r]
		if unit.Step == 0 && unit.Min == 0 {
			continue
		}
		var q float64
		switch {
		case unit.Step > 0 && unit.Min <= 1.5*unit.Step:
			q = 1.5 * unit.Step
		case unit.Step > 0:
			q = roundUp(unit, unit.Min) + unit.Step/2
		default:
			q = unit.Min / 2
		}
		if unit.Allows(q) {
			continue
		}
		checked++
		c.refused(fmt.Sprintf("guarantee %v of %q", q, r), []hal.Allocation{{Function: f, Guarantee: hal.Vector{r: q}, Limit: hal.Vector{r: roundUp(unit, q)}}},
			before, hal.ErrNotInUnits, fmt.Sprintf("%q", r))
	}
	if checked == 0 {
		c.logf("no resource has a step or minimum: nothing to check")
	}
}

func sortedResources(m map[hal.Resource]hal.Unit) []hal.Resource {
	out := make([]hal.Resource, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (c *checker) refusals() {
	c.t.Helper()
	before, ok := c.state(c.dev)
	if !ok {
		return
	}
	f := c.opts.Functions[0]
	c.refused("unknown resource in Guarantee", []hal.Allocation{{Function: f, Guarantee: hal.Vector{Unknown: 1}, Limit: hal.Vector{Unknown: 1}}},
		before, nil, string(Unknown))
	c.refused("unknown resource in Limit", []hal.Allocation{{Function: f, Limit: hal.Vector{Unknown: 1}}},
		before, nil, string(Unknown))

	capacity, err := c.dev.Capacity(c.ctx)
	if err != nil {
		c.errorf("Capacity: %v", err)
		return
	}
	resources := c.opts.Resources
	if resources == nil {
		resources = capacity.Resources()
	}
	units := hal.UnitsOf(c.dev)
	for _, r := range resources {
		over := roundUp(units[r], capacity[r]*2+1)
		c.refused(fmt.Sprintf("guarantee of %q beyond capacity", r), []hal.Allocation{{Function: f, Guarantee: hal.Vector{r: over}}},
			before, nil, string(r))
	}

	// One refused allocation in a batch: the valid one is not applied.
	allocs, ok := c.allocations(0.25)
	if !ok {
		return
	}
	allocs[1].Guarantee = hal.Vector{Unknown: 1}
	allocs[1].Limit = nil
	c.refused("a batch with one unknown resource", allocs, before, nil, string(Unknown))
}
