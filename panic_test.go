package updraft_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// panicDevice wraps a sim device and panics in the method named by at.
type panicDevice struct {
	*sim.Device
	at string
}

func (d panicDevice) Capacity(ctx context.Context) (hal.Vector, error) {
	if d.at == "Capacity" {
		panic("driver bug in Capacity")
	}
	return d.Device.Capacity(ctx)
}

func (d panicDevice) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	if d.at == "Apply" {
		// A driver that panics halfway: the first allocation took effect.
		if _, err := d.Device.Apply(ctx, allocs[:1]); err != nil {
			return nil, err
		}
		panic("driver bug in Apply")
	}
	undo, err := d.Device.Apply(ctx, allocs)
	return d.panicUndo(undo, err)
}

// ApplyJournaled is the journaled path the Orchestrator takes: the same
// panics, after the record of what changed was journaled.
func (d panicDevice) ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if d.at == "Apply" {
		if _, err := d.Device.ApplyJournaled(ctx, allocs[:1], journal); err != nil {
			return nil, err
		}
		panic("driver bug in Apply")
	}
	undo, err := d.Device.ApplyJournaled(ctx, allocs, journal)
	return d.panicUndo(undo, err)
}

func (d panicDevice) panicUndo(undo hal.Undo, err error) (hal.Undo, error) {
	if err != nil || d.at != "Undo" {
		return undo, err
	}
	panicked := false
	return func(ctx context.Context) error {
		if !panicked {
			panicked = true
			panic("driver bug in Undo")
		}
		return undo(ctx)
	}, nil
}

// panicCapture is a state source whose capture panics.
type panicCapture struct{ *table }

func (panicCapture) Capture(context.Context) (snapshot.View, error) { panic("source bug in Capture") }

type panicProfiler struct{}

func (panicProfiler) Forecast(context.Context, time.Duration, []profile.Function) (profile.Forecast, error) {
	panic("profiler bug")
}

// TestPanicsLeaveTheMachineAsAFailedUpdateDoes: a panic from each host
// callback and driver method is recovered, the compensations of a failure
// at that point run, and the update ends with a *PanicError: the device
// ends as it began, critical state is what it was, nothing stays degraded.
func TestPanicsLeaveTheMachineAsAFailedUpdateDoes(t *testing.T) {
	tests := []struct {
		name    string
		inject  func(f *fixture, u *recordingUpdate)
		where   string
		outcome updraft.Outcome
		// resume: a compensation panicked too, so the update is left to
		// Resume (as after any failed compensation), which finishes it.
		resume bool
	}{
		{"Update.Apply", func(f *fixture, u *recordingUpdate) {
			u.apply = func(context.Context) error { f.routes.replace(map[string]string{}); panic("host bug in Apply") }
		}, "Update.Apply", updraft.RolledBack, false},
		{"Update.Rollback", func(f *fixture, u *recordingUpdate) {
			u.applyErr = errors.New("new firmware refused")
			u.rollback = func(context.Context) error { panic("host bug in Rollback") }
		}, "Update.Rollback", updraft.RollbackFailed, true},
		{"device Capacity", func(f *fixture, _ *recordingUpdate) { f.device = panicDevice{f.dev, "Capacity"} }, "device Capacity", updraft.Aborted, false},
		{"device Apply", func(f *fixture, _ *recordingUpdate) { f.device = panicDevice{f.dev, "Apply"} }, "device Apply", updraft.Aborted, false},
		{"device Undo", func(f *fixture, u *recordingUpdate) {
			f.device = panicDevice{f.dev, "Undo"}
			u.applyErr = errors.New("refused")
		}, "device Undo", updraft.RolledBack, true},
		{"OnEvent", func(f *fixture, _ *recordingUpdate) {
			f.opts.OnEvent = func(e updraft.Event) {
				if e.Phase == updraft.PhaseDegrade && e.Message == "phase started" {
					panic("host bug in the event hook")
				}
			}
		}, "Options.OnEvent", updraft.Aborted, false},
		{"state source", func(f *fixture, _ *recordingUpdate) { f.fns[0].State = panicCapture{f.routes} }, "", updraft.Aborted, false},
		{"profiler", func(f *fixture, _ *recordingUpdate) { f.opts.Profiler = panicProfiler{} }, "Profiler.Forecast", updraft.Aborted, false},
		{"check", func(f *fixture, _ *recordingUpdate) {
			f.opts.Checks = []validate.Check{validate.Func("probe", func(context.Context) error { panic("check bug") })}
		}, "", updraft.RolledBack, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			u := &recordingUpdate{}
			tt.inject(f, u)
			initial := f.dev.Allocations()
			routes := f.routes.get()
			o := f.orchestrator(t)

			report, err := o.PrepareForUpdate(context.Background(), u)
			require.Error(t, err, report.String())
			assert.Equal(t, tt.outcome, report.Outcome, report.String())
			if tt.where != "" {
				var pe *updraft.PanicError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tt.where, pe.Where)
				assert.NotEmpty(t, pe.Stack)
			}
			if tt.resume {
				assert.Contains(t, report.String(), "Orchestrator.Resume finishes what is owed")
				u.rollback = nil
				resumed, err := o.Resume(context.Background(), u)
				require.NoError(t, err, resumed.String())
			}
			assert.Empty(t, cmp.Diff(initial, f.dev.Allocations()), "the device ends as it began")
			assert.Empty(t, cmp.Diff(routes, f.routes.get()), "critical state is what it was")
			for _, s := range o.Degrader().(*degrade.Controller).Status() {
				assert.Equal(t, degrade.Normal, s.Mode, "%s is not left degraded", s.Function)
			}
			if tt.outcome == updraft.RolledBack {
				assert.Contains(t, u.calls, "rollback", "the host's rollback ran")
			}
		})
	}
}
