package hal

import (
	"errors"
	"fmt"
	"maps"
	"math"
)

// Unit is how a device hands out one resource: in whole multiples of Step,
// and never a non-zero amount below Min. The zero Unit is continuous with
// no minimum.
//
// Its fields are those of partition.Unit, so a device's units convert with
// partition.Unit(u).
type Unit struct {
	// Step is the granularity: every amount of the resource the device
	// accepts is a whole multiple of it. 0 means continuous.
	Step float64
	// Min is the least non-zero amount the device accepts. 0 means none.
	Min float64
}

// Units is an optional interface of a [Device] (checked with a type
// assertion, in the manner of database/sql/driver's optional interfaces)
// by which a device tells the planner how it hands out its resources: for
// example an offload card's whole queue slots. A planner that honours it
// gives such a device only amounts it accepts, so the device need not
// refuse a plan of fractions.
//
// Units returns, per resource, its [Unit]; a resource it does not name is
// continuous. The result is the same on every call, and callers must not
// modify it. A device that implements Units refuses, in Apply, a
// Guarantee or Limit that is not whole in the resource's Unit, with an
// error that names the function and resource (see [CheckUnits]).
type Units interface {
	Units() map[Resource]Unit
}

// ErrNotInUnits is returned (wrapped) by [CheckUnits] and by devices asked
// for an amount their [Units] do not allow. Check with errors.Is.
var ErrNotInUnits = errors.New("hal: amount is not in the device's units")

// unitTolerance is the relative slack with which an amount counts as a
// whole multiple of a step, so that 0.1*3 is three steps of 0.1.
const unitTolerance = 1e-9

// Validate returns an error if Step or Min is negative, NaN or infinite.
func (u Unit) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"Step", u.Step}, {"Min", u.Min}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("hal: unit %s %v must be a finite number >= 0", f.name, f.v)
		}
	}
	return nil
}

// Allows reports whether the device accepts amount q of a resource with
// unit u: q is 0, or a whole multiple of Step (within a relative 1e-9) and
// at least Min.
func (u Unit) Allows(q float64) bool {
	if q == 0 {
		return true
	}
	if q < u.Min*(1-unitTolerance) {
		return false
	}
	if u.Step == 0 {
		return true
	}
	n := q / u.Step
	return math.Abs(n-math.Round(n)) <= unitTolerance*math.Max(1, math.Abs(n))
}

// CheckUnits returns an error matching [ErrNotInUnits], naming the
// function, field ("guarantee" or "limit") and resource, if any amount of
// a is not allowed by its resource's unit in units. Resources units does
// not name are continuous.
func CheckUnits(units map[Resource]Unit, a Allocation) error {
	for _, f := range []struct {
		name string
		v    Vector
	}{{"guarantee", a.Guarantee}, {"limit", a.Limit}} {
		for _, r := range f.v.Resources() {
			u, ok := units[r]
			if !ok || u.Allows(f.v[r]) {
				continue
			}
			why := fmt.Sprintf("is not a whole multiple of %v", u.Step)
			if q := f.v[r]; q < u.Min*(1-unitTolerance) {
				why = fmt.Sprintf("is below the least non-zero amount %v", u.Min)
			}
			return fmt.Errorf("hal: function %q %s %q: %v %s: %w", a.Function, f.name, r, f.v[r], why, ErrNotInUnits)
		}
	}
	return nil
}

// UnitsOf returns d's units if it implements [Units], and nil otherwise.
// The map is a copy the caller may modify.
func UnitsOf(d Device) map[Resource]Unit {
	u, ok := d.(Units)
	if !ok {
		return nil
	}
	return maps.Clone(u.Units())
}
