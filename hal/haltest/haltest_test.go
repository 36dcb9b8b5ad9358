package haltest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/haltest"
	"github.com/updraft-dev/updraft/hal/sim"
)

// recorder is a testing.TB that records failures instead of failing: the
// suite calls only Helper, Errorf and Logf on a TB that is not a
// *testing.T (the embedded nil TB panics on anything else).
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}

func simOpen(testing.TB) hal.Device { return sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30}) }

func simState(d hal.Device) (any, error) { return d.(*sim.Device).Allocations(), nil }

func TestSimPassesThroughARecorder(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, simOpen, haltest.Options{State: simState})
	if len(r.failures) > 0 {
		t.Fatalf("hal/sim failed the suite:\n%s", strings.Join(r.failures, "\n"))
	}
}

// sloppy is hal/sim with a deliberately non-exact undo: it forgets to
// give the first function back its allocation, leaving it at what the
// Apply set.
type sloppy struct{ *sim.Device }

func (s sloppy) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	if _, err := s.Device.Apply(ctx, allocs); err != nil {
		return nil, err
	}
	rest := allocs[1:]
	before := s.Device.Allocations()
	return hal.Once(func(ctx context.Context) error {
		next := []hal.Allocation{}
		for _, a := range rest {
			if b, ok := before[a.Function]; ok {
				next = append(next, b)
			}
		}
		_, err := s.Device.Apply(ctx, next)
		return err
	}), nil
}

func TestSuiteFailsANonExactUndo(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, func(testing.TB) hal.Device { return sloppy{sim.New(hal.Vector{hal.CPU: 4})} },
		haltest.Options{State: func(d hal.Device) (any, error) { return d.(sloppy).Allocations(), nil }})
	if len(r.failures) == 0 {
		t.Fatal("the suite passed a driver whose Undo is not exact")
	}
	joined := strings.Join(r.failures, "\n")
	for _, want := range []string{"ApplyUndo: after Apply and Undo", "haltest-a"} {
		if !strings.Contains(joined, want) {
			t.Errorf("failures do not mention %q:\n%s", want, joined)
		}
	}
}

// blind is hal/sim that accepts any resource: it cannot enforce an
// unknown one but says nothing.
type blind struct{ *sim.Device }

func (b blind) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	known := make([]hal.Allocation, 0, len(allocs))
	for _, a := range allocs {
		k := hal.Allocation{Function: a.Function, Guarantee: hal.Vector{}, Limit: hal.Vector{}}
		if q, ok := a.Guarantee[hal.CPU]; ok {
			k.Guarantee[hal.CPU] = min(q, 4)
		}
		if q, ok := a.Limit[hal.CPU]; ok {
			k.Limit[hal.CPU] = min(q, 4)
		}
		known = append(known, k)
	}
	return b.Device.Apply(ctx, known)
}

func TestSuiteFailsADriverThatAcceptsWhatItCannotEnforce(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, func(testing.TB) hal.Device { return blind{sim.New(hal.Vector{hal.CPU: 4})} },
		haltest.Options{State: func(d hal.Device) (any, error) { return d.(blind).Allocations(), nil }})
	joined := strings.Join(r.failures, "\n")
	for _, want := range []string{`Refusals: unknown resource in Guarantee: Apply`, `want a refusal`, `guarantee of "cpu" beyond capacity`} {
		if !strings.Contains(joined, want) {
			t.Errorf("failures do not mention %q:\n%s", want, joined)
		}
	}
}

// fractional is hal/sim reporting whole-unit resources but accepting
// fractions of them.
type fractional struct{ *sim.Device }

func (fractional) Units() map[hal.Resource]hal.Unit {
	return map[hal.Resource]hal.Unit{"nic.queue": {Step: 1}}
}

func TestSuiteFailsADriverThatAcceptsFractionsOfItsUnits(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, func(testing.TB) hal.Device { return fractional{sim.New(hal.Vector{"nic.queue": 8})} },
		haltest.Options{State: func(d hal.Device) (any, error) { return d.(fractional).Allocations(), nil }})
	joined := strings.Join(r.failures, "\n")
	if !strings.Contains(joined, `Units: guarantee 1.5 of "nic.queue": Apply`) {
		t.Errorf("failures do not report the accepted fraction:\n%s", joined)
	}
}

// forgetful is hal/sim whose journal records nothing useful: its record
// undoes nothing.
type forgetful struct{ *sim.Device }

func (f forgetful) ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if err := journal([]byte(`{"v":1,"device":"sim","before":{}}`)); err != nil {
		return nil, err
	}
	return f.Device.Apply(ctx, allocs)
}

func TestSuiteFailsAJournalThatDoesNotCoverTheChange(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, func(testing.TB) hal.Device { return forgetful{sim.New(hal.Vector{hal.CPU: 4})} },
		haltest.Options{State: func(d hal.Device) (any, error) { return d.(forgetful).Allocations(), nil }})
	joined := strings.Join(r.failures, "\n")
	if !strings.Contains(joined, "Journaled: after UndoRecord (call 1)") {
		t.Errorf("failures do not report the record that undoes nothing:\n%s", joined)
	}
}

func TestSuiteNeedsTwoFunctions(t *testing.T) {
	r := &recorder{}
	haltest.TestDevice(r, simOpen, haltest.Options{Functions: []string{"only"}})
	if len(r.failures) != 1 || !strings.Contains(r.failures[0], "at least two") {
		t.Fatalf("failures = %q", r.failures)
	}
}

// The suite run as a driver author runs it, with subtests.
func TestSim(t *testing.T) {
	haltest.TestDevice(t, simOpen, haltest.Options{State: simState})
}
