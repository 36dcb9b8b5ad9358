package updraft_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// table is a small piece of critical state: a route table behind a mutex.
// It implements snapshot.Source and migrate.State.
type table struct {
	mu         sync.Mutex
	rows       map[string]string
	captureErr error
}

func newTable(rows map[string]string) *table { return &table{rows: maps.Clone(rows)} }

func (t *table) get() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.rows)
}

func (t *table) set(k, v string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows[k] = v
}

func (t *table) replace(rows map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = maps.Clone(rows)
}

type tableView map[string]string

func (v tableView) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(map[string]string(v))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (t *table) Capture(context.Context) (snapshot.View, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.captureErr != nil {
		return nil, t.captureErr
	}
	return tableView(maps.Clone(t.rows)), nil
}

func (t *table) Restore(_ context.Context, r io.Reader) error {
	var rows map[string]string
	if err := json.NewDecoder(r).Decode(&rows); err != nil {
		return err
	}
	t.replace(rows)
	return nil
}

func (t *table) Export(ctx context.Context, w io.Writer) error {
	v, err := t.Capture(ctx)
	if err != nil {
		return err
	}
	_, err = v.WriteTo(w)
	return err
}

func (t *table) Import(ctx context.Context, r io.Reader) error { return t.Restore(ctx, r) }

// fixture is one orchestrated host: four functions on a sim device.
type fixture struct {
	dev      *sim.Device
	device   hal.Device // what the Orchestrator gets; nil means dev
	routes   *table     // forward's state (critical)
	counters *table     // stats' state (migrates with it)
	opts     updraft.Options
	fns      []updraft.Function
	events   []updraft.Event
	eventsMu sync.Mutex
}

const gib = float64(1 << 30)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		dev:      sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 8 * gib}),
		routes:   newTable(map[string]string{"10.0.0.0/8": "eth0"}),
		counters: newTable(map[string]string{"packets": "0"}),
	}
	f.fns = []updraft.Function{
		{Name: "forward", Criticality: updraft.Critical, EntryPoint: true, DependsOn: []string{"conntrack"}, State: f.routes,
			Func: func(ctx context.Context, p []byte) ([]byte, error) { return []byte(f.routes.get()[string(p)]), nil }},
		{Name: "conntrack"},
		{Name: "stats", Criticality: updraft.NonCritical, Remote: &updraft.Remote{State: f.counters},
			Func: func(ctx context.Context, p []byte) ([]byte, error) {
				f.counters.set("packets", string(p))
				return []byte("counted"), nil
			}},
		{Name: "reports", Criticality: updraft.NonCritical, Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 1, Burst: 1}},
	}
	mover, err := migrate.New([]migrate.Target{migrate.NewLocalTarget("standby", migrate.LocalOptions{})}, migrate.Options{BufferDir: t.TempDir()})
	require.NoError(t, err)
	f.opts = updraft.Options{
		Profiler: profile.Static{Demand: map[string]hal.Vector{
			"forward":   {hal.CPU: 1, hal.Memory: gib},
			"conntrack": {hal.CPU: 0.5, hal.Memory: gib},
			"stats":     {hal.CPU: 2, hal.Memory: gib},
			"reports":   {hal.CPU: 2, hal.Memory: gib},
		}},
		Migrator: updraft.Mover(mover),
		Store:    snapshot.NewMemStore(),
		Journal:  newMemJournal(),
		Checks: []validate.Check{validate.Func("routes intact", func(ctx context.Context) error {
			if f.routes.get()["10.0.0.0/8"] != "eth0" {
				return errors.New("route 10.0.0.0/8 is gone")
			}
			return nil
		})},
		OnEvent: func(e updraft.Event) {
			f.eventsMu.Lock()
			defer f.eventsMu.Unlock()
			f.events = append(f.events, e)
		},
	}
	return f
}

func (f *fixture) orchestrator(t *testing.T) *updraft.Orchestrator {
	t.Helper()
	var dev hal.Device = f.dev
	if f.device != nil {
		dev = f.device
	}
	o, err := updraft.New(f.fns, dev, f.opts)
	require.NoError(t, err)
	return o
}

// recordingUpdate records what the orchestrator asked of it.
type recordingUpdate struct {
	calls       []string
	apply       func(ctx context.Context) error
	rollback    func(ctx context.Context) error
	applyErr    error
	rollbackErr error
}

func (u *recordingUpdate) Apply(ctx context.Context) error {
	u.calls = append(u.calls, "apply")
	if u.apply != nil {
		if err := u.apply(ctx); err != nil {
			return err
		}
	}
	return u.applyErr
}

func (u *recordingUpdate) Rollback(ctx context.Context) error {
	u.calls = append(u.calls, "rollback")
	if u.rollback != nil {
		if err := u.rollback(ctx); err != nil {
			return err
		}
	}
	return u.rollbackErr
}

var (
	before = []updraft.Phase{updraft.PhaseProfile, updraft.PhasePlan, updraft.PhaseBaseline, updraft.PhaseMigrate,
		updraft.PhaseSnapshot, updraft.PhasePartition, updraft.PhaseDegrade, updraft.PhaseUpdate, updraft.PhaseValidate}
	cleanup = []updraft.Phase{updraft.PhaseRestoreService, updraft.PhaseUnpartition, updraft.PhaseReturn}
)

func TestPrepareForUpdateCommits(t *testing.T) {
	f := newFixture(t)
	o := f.orchestrator(t)
	ctx := context.Background()

	var duringStats, duringReports error
	update := &recordingUpdate{apply: func(ctx context.Context) error {
		// While the update runs, stats is served by the standby target and
		// reports is throttled: the first call passes, the second is refused.
		_, duringStats = o.Invoke(ctx, "stats", []byte("42"))
		_, _ = o.Invoke(ctx, "reports", nil)
		_, duringReports = o.Invoke(ctx, "reports", nil)
		f.routes.set("192.168.0.0/16", "eth1") // the new version adds a route
		return nil
	}}
	report, err := o.PrepareForUpdate(ctx, update)
	require.NoError(t, err, report.String())

	assert.Equal(t, updraft.Committed, report.Outcome)
	assert.Equal(t, append(append([]updraft.Phase{}, before...), cleanup...), report.PhaseNames())
	assert.Equal(t, []string{"apply"}, update.calls)

	// Decisions: forward is critical by annotation, conntrack because
	// forward depends on it; stats moved, reports throttled.
	crit := map[string]bool{}
	for _, d := range report.Functions {
		crit[d.Function] = d.Critical
	}
	assert.Equal(t, map[string]bool{"forward": true, "conntrack": true, "stats": false, "reports": false}, crit)
	require.Len(t, report.Placements, 1)
	assert.Equal(t, "stats", report.Placements[0].Function)
	require.Len(t, report.Degraded, 1)
	assert.Equal(t, "reports", report.Degraded[0].Function)
	assert.NotEmpty(t, report.SnapshotID)

	assert.NoError(t, duringStats, "stats is served remotely during the update")
	assert.ErrorIs(t, duringReports, degrade.ErrThrottled)
	assert.Equal(t, "42", f.counters.get()["packets"], "the state changed remotely came back")
	assert.Equal(t, "eth1", f.routes.get()["192.168.0.0/16"], "a committed update keeps the new state")

	// Full service is back: nothing partitioned, nothing degraded.
	assert.Empty(t, f.dev.Allocations())
	for _, s := range o.Degrader().(*degrade.Controller).Status() {
		assert.Equal(t, degrade.Normal, s.Mode, s.Function)
	}
	out, err := o.Invoke(ctx, "stats", []byte("43"))
	require.NoError(t, err)
	assert.Equal(t, "counted", string(out))
	assert.Equal(t, "43", f.counters.get()["packets"], "stats runs locally again")

	assert.Equal(t, 1.0, gather(t, o, "updraft_updates_total", "committed"))
	assert.Equal(t, 1.0, gather(t, o, "updraft_phase_duration_seconds", "validate"), "one validate phase observed")

	assert.Contains(t, report.String(), "committed")
	assert.Contains(t, report.String(), "forward")
}

// TestFailureAtEveryPhase injects a failure in each phase in turn and
// checks which compensations ran, in which order, and that the device ends
// exactly as it started.
func TestFailureAtEveryPhase(t *testing.T) {
	boom := errors.New("injected")
	rollbackSteps := []updraft.Phase{updraft.PhaseRollback, updraft.PhaseRestore}
	tests := []struct {
		name    string
		inject  func(f *fixture, u *recordingUpdate)
		phases  []updraft.Phase
		outcome updraft.Outcome
	}{
		{"profile", func(f *fixture, _ *recordingUpdate) { f.opts.Profiler = failingProfiler{boom} },
			before[:1], updraft.Aborted},
		{"plan", func(f *fixture, _ *recordingUpdate) { f.dev.FailCapacity(boom) },
			before[:2], updraft.Aborted},
		{"baseline", func(f *fixture, _ *recordingUpdate) {
			f.opts.Checks = append(f.opts.Checks, failingBaseline{boom})
		}, before[:3], updraft.Aborted},
		{"migrate", func(f *fixture, _ *recordingUpdate) { f.opts.Migrator = failingMigrator{boom} },
			before[:4], updraft.Aborted},
		{"snapshot", func(f *fixture, _ *recordingUpdate) { f.routes.captureErr = boom },
			append(before[:5:5], updraft.PhaseReturn), updraft.Aborted},
		{"partition", func(f *fixture, _ *recordingUpdate) { f.dev.FailApply(boom) },
			append(before[:6:6], updraft.PhaseReturn), updraft.Aborted},
		{"degrade", func(f *fixture, _ *recordingUpdate) { f.opts.Degrader = failingDegrader{boom} },
			append(before[:7:7], updraft.PhaseUnpartition, updraft.PhaseReturn), updraft.Aborted},
		{"update", func(_ *fixture, u *recordingUpdate) { u.applyErr = boom },
			concat(before[:8], rollbackSteps, cleanup), updraft.RolledBack},
		{"validate", func(f *fixture, u *recordingUpdate) {
			u.apply = func(context.Context) error { f.routes.replace(map[string]string{}); return nil }
		}, concat(before, rollbackSteps, cleanup), updraft.RolledBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			update := &recordingUpdate{}
			tt.inject(f, update)
			initial := f.dev.Allocations()
			routes := f.routes.get()

			report, err := f.orchestrator(t).PrepareForUpdate(context.Background(), update)
			require.Error(t, err)
			assert.Equal(t, tt.outcome, report.Outcome, report.String())
			assert.Equal(t, tt.phases, report.PhaseNames(), report.String())
			outcome, ran := report.Ran(updraft.Phase(tt.name))
			require.True(t, ran)
			assert.Equal(t, updraft.Failed, outcome)

			assert.Empty(t, cmp.Diff(initial, f.dev.Allocations()), "the device ends as it started")
			for _, e := range f.dev.History() {
				if e.Op == "undo" {
					assert.NoError(t, e.Err, "every undo succeeded")
				}
			}
			assert.Empty(t, cmp.Diff(routes, f.routes.get()), "critical state is what it was before")
			if tt.outcome == updraft.RolledBack {
				assert.Equal(t, []string{"apply", "rollback"}, update.calls)
			} else {
				assert.Empty(t, update.calls, "the update never ran")
			}
		})
	}
}

func TestRollbackFailureIsReportedAndAlerted(t *testing.T) {
	f := newFixture(t)
	update := &recordingUpdate{
		apply:       func(context.Context) error { f.routes.replace(map[string]string{}); return nil },
		rollbackErr: errors.New("old firmware image missing"),
	}
	report, err := f.orchestrator(t).PrepareForUpdate(context.Background(), update)
	require.Error(t, err)
	assert.Equal(t, updraft.RollbackFailed, report.Outcome)
	assert.ErrorContains(t, err, "validation failed")
	assert.ErrorContains(t, err, "old firmware image missing")
	assert.Equal(t, "eth0", f.routes.get()["10.0.0.0/8"], "critical functions serve on the restored state")
	assert.Empty(t, f.dev.Allocations())

	// Two alerts: the rollback failed, and so the update is not finished:
	// its journal stays for Resume, which calls Rollback again.
	var alerts []updraft.Phase
	for _, e := range f.events {
		if e.Level == updraft.LevelAlert {
			alerts = append(alerts, e.Phase)
		}
	}
	assert.Equal(t, []updraft.Phase{updraft.PhaseRollback, updraft.PhaseCleanup}, alerts)
	assert.Contains(t, report.String(), "Orchestrator.Resume finishes what is owed")
}

func TestMarginalPolicy(t *testing.T) {
	for _, tt := range []struct {
		policy  updraft.MarginalPolicy
		outcome updraft.Outcome
	}{{updraft.RollbackOnMarginal, updraft.RolledBack}, {updraft.ProceedOnMarginal, updraft.Committed}} {
		f := newFixture(t)
		f.opts.Marginal = tt.policy
		f.opts.Checks = append(f.opts.Checks, marginalCheck{})
		report, _ := f.orchestrator(t).PrepareForUpdate(context.Background(), &recordingUpdate{})
		assert.Equal(t, tt.outcome, report.Outcome, report.String())
		assert.Empty(t, f.dev.Allocations())
	}
}

func noopFunc(_ context.Context, p []byte) ([]byte, error) { return p, nil }

func TestPreflightNamesTheCulprit(t *testing.T) {
	dev := sim.New(hal.Vector{hal.CPU: 1})
	ok := validate.Func("ok", func(context.Context) error { return nil })
	a := []updraft.Function{{Name: "a", Demand: hal.Vector{hal.CPU: 0.5}}}
	var nilDevice *sim.Device
	tests := []struct {
		name   string
		fns    []updraft.Function
		device hal.Device
		opts   func(*updraft.Options)
		kind   error
		want   string
	}{
		{"no functions", nil, dev, nil, updraft.ErrInvalidFunctions, "no functions"},
		{"empty name", []updraft.Function{{Name: ""}}, dev, nil, updraft.ErrInvalidFunctions, "function #0 has an empty name"},
		{"duplicate", []updraft.Function{{Name: "a"}, {Name: "a"}}, dev, nil, updraft.ErrInvalidFunctions, `function "a" is listed twice`},
		{"unknown dependency", []updraft.Function{{Name: "a", DependsOn: []string{"b"}}}, dev, nil, updraft.ErrInvalidFunctions, `function "a" depends on "b", which is not among the functions given`},
		{"cycle", []updraft.Function{{Name: "a", DependsOn: []string{"b"}}, {Name: "b", DependsOn: []string{"c"}}, {Name: "c", DependsOn: []string{"a"}}},
			dev, nil, updraft.ErrInvalidFunctions, "a -> b -> c -> a"},
		{"remote without func", []updraft.Function{{Name: "a", Remote: &updraft.Remote{}}}, dev, nil, updraft.ErrInvalidFunctions, `function "a" has a Remote spec but no Func`},
		{"remote name the wire refuses", []updraft.Function{{Name: "stats now", Demand: hal.Vector{hal.CPU: 1}, Func: noopFunc, Remote: &updraft.Remote{}}},
			dev, nil, updraft.ErrInvalidFunctions, `function "stats now" Remote`},
		{"bad demand", []updraft.Function{{Name: "a", Demand: hal.Vector{hal.CPU: -1}}}, dev, nil, updraft.ErrInvalidFunctions, `function "a" Demand`},
		{"bad degrade policy", []updraft.Function{{Name: "a", Demand: hal.Vector{hal.CPU: 1}, Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: -1}}},
			dev, nil, updraft.ErrInvalidFunctions, `function "a" Degrade`},
		{"no device", a, nil, nil, updraft.ErrMissingOption, "no device"},
		{"typed nil device", a, nilDevice, nil, updraft.ErrInvalidOption, "device is a nil *sim.Device"},
		{"state without store", []updraft.Function{{Name: "a", Demand: hal.Vector{hal.CPU: 1}, State: newTable(nil)}}, dev,
			func(o *updraft.Options) { o.Store = nil }, updraft.ErrMissingOption, `function "a" has State but Options.Store is nil`},
		{"no journal", a, dev, func(o *updraft.Options) { o.Store, o.Journal = nil, nil }, updraft.ErrMissingOption, "no journal"},
		{"no checks", a, dev, func(o *updraft.Options) { o.Checks = nil }, updraft.ErrMissingOption, "no validation checks"},
		{"checks and validator", a, dev, func(o *updraft.Options) { o.Validator = fakeValidator{validate.Pass} },
			updraft.ErrConflictingOptions, "Options.Validator is set, so Options.Checks and AllowNoChecks would be ignored"},
		{"snapshotter and snapshot options", a, dev, func(o *updraft.Options) {
			o.Snapshotter, o.SnapshotOptions = fakeSnapshotter{}, snapshot.Options{CPUShare: 0.5}
		}, updraft.ErrConflictingOptions, "Options.Snapshotter is set, so Options.SnapshotOptions (for the default engine) would be ignored"},
		{"nothing measures", []updraft.Function{{Name: "a", Criticality: updraft.Critical}}, dev, nil, updraft.ErrMissingOption,
			`no Options.Profiler measures the functions and function "a" has no static Demand`},
		{"window of a nanosecond", a, dev, func(o *updraft.Options) { o.Window = time.Nanosecond }, updraft.ErrInvalidOption, "Options.Window 1ns is outside"},
		{"window of a century", a, dev, func(o *updraft.Options) { o.Window = 100 * 365 * 24 * time.Hour }, updraft.ErrInvalidOption, "Options.Window 876000h0m0s is outside"},
		{"nil mover", a, dev, func(o *updraft.Options) { o.Migrator = updraft.Mover(nil) }, updraft.ErrInvalidOption, "updraft.Mover of a nil *migrate.Mover"},
		{"typed nil store", a, dev, func(o *updraft.Options) { o.Store = (*snapshot.FileStore)(nil) }, updraft.ErrInvalidOption, "Options.Store is a nil *snapshot.FileStore"},
		{"unknown marginal policy", a, dev, func(o *updraft.Options) { o.Marginal = 7 }, updraft.ErrInvalidOption, "Options.Marginal 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := updraft.Options{Checks: []validate.Check{ok}, Store: snapshot.NewMemStore(), Journal: newMemJournal()}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := updraft.New(tt.fns, tt.device, opts)
			require.ErrorIs(t, err, tt.kind)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	// The default engine's options are checked by package snapshot, and
	// the error names the field.
	_, err := updraft.New([]updraft.Function{{Name: "a", Demand: hal.Vector{hal.CPU: 1}, State: newTable(nil)}}, dev,
		updraft.Options{Checks: []validate.Check{ok}, Store: snapshot.NewMemStore(), SnapshotOptions: snapshot.Options{CPUShare: 2}})
	require.ErrorContains(t, err, "CPUShare 2 out of range")

	// Opting out of validation evidence is explicit, and the report says so.
	o, err := updraft.New(a, dev, updraft.Options{AllowNoChecks: true, Journal: newMemJournal()})
	require.NoError(t, err)
	report, err := o.PrepareForUpdate(context.Background(), &recordingUpdate{})
	require.NoError(t, err)
	assert.Equal(t, updraft.Committed, report.Outcome)
	assert.Empty(t, report.Validation.Results)
	assert.Contains(t, report.String(), "flag: no validation checks ran")
}

// TestUpdatePreflight: an update that cannot run is refused before
// anything changes; one that cannot be rolled back is flagged first.
func TestUpdatePreflight(t *testing.T) {
	f := newFixture(t)
	o := f.orchestrator(t)
	ctx := context.Background()
	for _, u := range []updraft.Update{nil, updraft.UpdateFuncs{}, (*updraft.UpdateFuncs)(nil)} {
		report, err := o.PrepareForUpdate(ctx, u)
		require.ErrorIs(t, err, updraft.ErrInvalidUpdate)
		assert.Empty(t, report.Phases, "nothing ran")
	}
	assert.Empty(t, f.dev.History(), "the device was never touched")

	report, err := o.PrepareForUpdate(ctx, updraft.UpdateFuncs{ApplyFunc: func(context.Context) error { return nil }})
	require.NoError(t, err)
	require.NotEmpty(t, report.Flags)
	assert.Contains(t, report.Flags[0], "the update has no RollbackFunc")
}

// TestRestoreAfterUpdate: a function whose state the update wipes asks for
// it back after a committed update; the other state sources keep what the
// new version wrote.
func TestRestoreAfterUpdate(t *testing.T) {
	f := newFixture(t)
	flows := newTable(map[string]string{"flow-1": "offloaded"})
	f.fns[1].State = flows // conntrack: the card's flow table, wiped by the firmware reload
	f.fns[1].RestoreAfterUpdate = true
	update := &recordingUpdate{apply: func(context.Context) error {
		flows.replace(map[string]string{})
		f.routes.set("192.168.0.0/16", "eth1")
		return nil
	}}
	report, err := f.orchestrator(t).PrepareForUpdate(context.Background(), update)
	require.NoError(t, err, report.String())
	outcome, ran := report.Ran(updraft.PhaseRestore)
	require.True(t, ran)
	assert.Equal(t, updraft.OK, outcome)
	assert.Equal(t, map[string]string{"flow-1": "offloaded"}, flows.get(), "the wiped state came back")
	assert.Equal(t, "eth1", f.routes.get()["192.168.0.0/16"], "state not asked for keeps the new version's writes")
}

func TestOneUpdateAtATime(t *testing.T) {
	f := newFixture(t)
	o := f.orchestrator(t)
	var second error
	update := &recordingUpdate{apply: func(ctx context.Context) error {
		_, second = o.PrepareForUpdate(ctx, &recordingUpdate{})
		return nil
	}}
	_, err := o.PrepareForUpdate(context.Background(), update)
	require.NoError(t, err)
	assert.ErrorIs(t, second, updraft.ErrUpdateInProgress)
}

// gather registers o's collector in a fresh registry and returns the value
// (a counter's value, a histogram's sample count) of the series of family
// name that has a label equal to label.
func gather(t *testing.T, o *updraft.Orchestrator, name, label string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(o.Collector()))
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() != label {
					continue
				}
				if h := m.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s series labelled %q", name, label)
	return 0
}

func concat(parts ...[]updraft.Phase) []updraft.Phase {
	var out []updraft.Phase
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

type failingProfiler struct{ err error }

func (p failingProfiler) Forecast(context.Context, time.Duration, []profile.Function) (profile.Forecast, error) {
	return profile.Forecast{}, p.err
}

type failingMigrator struct{ err error }

func (m failingMigrator) Migrate(context.Context, string, []migrate.Spec) (updraft.Lease, error) {
	return nil, m.err
}

func (m failingMigrator) Reattach(context.Context, string, []migrate.Spec) (updraft.Lease, error) {
	return nil, m.err
}

type failingDegrader struct{ err error }

func (d failingDegrader) Set(string, degrade.Policy, string, time.Time) error { return d.err }
func (d failingDegrader) Clear(string) error                                  { return nil }
func (d failingDegrader) Acquire(string) (func(), error)                      { return func() {}, nil }

type failingBaseline struct{ err error }

func (failingBaseline) Name() string { return "baseline" }
func (failingBaseline) Run(context.Context) validate.Result {
	return validate.Result{Verdict: validate.Pass, Score: 1}
}
func (b failingBaseline) RecordBaseline(context.Context) error { return b.err }

type marginalCheck struct{}

func (marginalCheck) Name() string { return "latency p99" }
func (marginalCheck) Run(context.Context) validate.Result {
	return validate.Result{Verdict: validate.Marginal, Score: 0.5, Evidence: []string{"p99 +12% (bound +10%), p=0.08"}}
}
