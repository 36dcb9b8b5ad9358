package updraft

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// guardClock is a settable clock shared by the Orchestrator and its
// degrade controller; it starts at the real time so that windows computed
// from it are in the future for the controller's timers too.
type guardClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *guardClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *guardClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestGuardRunsForTheUpdateWindow runs real updates (hal/sim device, a
// FileStore journal, the default validator) with a non-critical function
// that does not fit and is throttled adaptively, by its own policy or by
// Options.AdaptiveDegrade, and a critical function whose every call takes
// 50 ms by the shared clock. During the window the Orchestrator runs the
// critical guard: the critical calls made through Invoke reach it, it backs
// off (an event explaining the critical latency) and the adaptive limit in
// the controller's status falls. However the window ends (commit, rollback,
// a panic in Apply), the guard is stopped and back at full service, and the
// report says what it did. Without an adaptive throttle it does not run.
func TestGuardRunsForTheUpdateWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   degrade.Policy
		option   bool // Options.AdaptiveDegrade
		apply    func() error
		outcome  Outcome
		guarding bool
	}{
		{"adaptive policy, commit", degrade.Policy{Mode: degrade.Throttle, Adaptive: true, MaxConcurrent: 8}, false, func() error { return nil }, Committed, true},
		{"adaptive policy, rollback", degrade.Policy{Mode: degrade.Throttle, Adaptive: true, MaxConcurrent: 8}, false, func() error { return errors.New("apply failed") }, RolledBack, true},
		{"adaptive policy, panic in Apply", degrade.Policy{Mode: degrade.Throttle, Adaptive: true, MaxConcurrent: 8}, false, func() error { panic("apply panicked") }, RolledBack, true},
		{"Options.AdaptiveDegrade on a fixed throttle", degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: 8}, true, func() error { return nil }, Committed, true},
		{"fixed throttle", degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: 8}, false, func() error { return nil }, Committed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &guardClock{t: time.Now()}
			ctl, err := degrade.New(degrade.Options{Clock: clk.Now, Guard: degrade.GuardOptions{
				Interval: time.Millisecond, Baseline: time.Millisecond, MinSamples: 1, SchedLatency: -1}})
			require.NoError(t, err)
			guardEvents := make(chan degrade.GuardState, 100)
			defer ctl.Subscribe(func(ev degrade.Event) {
				if ev.Cause == degrade.CauseGuard {
					guardEvents <- *ev.Guard
				}
			})()
			store, err := snapshot.NewFileStore(t.TempDir(), snapshot.FileStoreOptions{})
			require.NoError(t, err)
			policy := tc.policy
			o, err := New([]Function{
				{Name: "forward", Criticality: Critical, Demand: hal.Vector{hal.CPU: 1},
					Func: func(context.Context, []byte) ([]byte, error) { clk.Advance(50 * time.Millisecond); return nil, nil }},
				{Name: "batch", Criticality: NonCritical, Demand: hal.Vector{hal.CPU: 8}, Degrade: &policy,
					Func: func(context.Context, []byte) ([]byte, error) { return nil, nil }},
			}, sim.New(hal.Vector{hal.CPU: 2}), Options{Store: store, Degrader: ctl, Clock: clk.Now, AdaptiveDegrade: tc.option,
				Checks: []validate.Check{validate.Func("ok", func(context.Context) error { return nil })}})
			require.NoError(t, err)
			require.Same(t, ctl, o.Degrader(), "Degrader returns the host's controller")
			g := o.degrader.(*guardedDegrader)

			var run *guardRun
			report, err := o.PrepareForUpdate(context.Background(), UpdateFuncs{
				ApplyFunc: func(context.Context) error {
					batch := statusOf(t, ctl, "batch")
					require.Equal(t, degrade.Throttle, batch.Mode, "batch is throttled during the window")
					run = g.live.Load()
					if !tc.guarding {
						assert.Nil(t, run, "no guard without an adaptive throttle")
						assert.False(t, batch.Policy.Adaptive)
						return tc.apply()
					}
					require.NotNil(t, run, "the guard runs during the window")
					assert.True(t, batch.Policy.Adaptive, "batch's throttle is adaptive")
					assert.Equal(t, map[string]bool{"forward": true}, run.critical)
					before := batch.Limit
					for range 5 {
						_, err := o.Invoke(context.Background(), "forward", nil)
						require.NoError(t, err)
					}
					select {
					case st := <-guardEvents:
						assert.Less(t, st.Factor, 1.0)
						assert.Contains(t, st.Why, "critical p90 50ms over 2 x baseline 1ms")
					case <-time.After(10 * time.Second):
						t.Fatal("the guard did not react to 50 ms critical calls within 10s")
					}
					assert.Less(t, statusOf(t, ctl, "batch").Limit, before, "the adaptive limit fell")
					return tc.apply()
				},
				RollbackFunc: func(context.Context) error { return nil },
			})
			assert.Equal(t, tc.outcome, report.Outcome, "report: %s", report)
			if tc.outcome == Committed {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			assert.Nil(t, g.live.Load(), "no guard after the window")
			assert.Equal(t, 1.0, ctl.GuardState().Factor, "the guard is back at full service")
			flagged := strings.Contains(strings.Join(report.Flags, "\n"), "the critical guard tightened the adaptive throttles")
			if !tc.guarding {
				assert.False(t, flagged, "flags: %q", report.Flags)
				return
			}
			assert.True(t, run.ended(), "RunGuard returned")
			assert.True(t, flagged, "the report says what the guard did: %q", report.Flags)
		})
	}
}

// statusOf returns function's status in ctl.
func statusOf(t *testing.T, ctl *degrade.Controller, function string) degrade.Status {
	t.Helper()
	for _, s := range ctl.Status() {
		if s.Function == function {
			return s
		}
	}
	t.Fatalf("no status for %q", function)
	return degrade.Status{}
}
