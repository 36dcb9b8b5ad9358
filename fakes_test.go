package updraft_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// Each collaborator of the Orchestrator, faked in a few lines: the seams
// are small interfaces declared on the Orchestrator's side.

type fakeProfiler struct{ critical map[string]bool }

func (p fakeProfiler) Forecast(_ context.Context, w time.Duration, fns []profile.Function) (profile.Forecast, error) {
	fc := profile.Forecast{Window: w}
	for _, f := range fns {
		need := hal.Vector{hal.CPU: 1}
		fc.Functions = append(fc.Functions, profile.FunctionForecast{Function: f.Name, Critical: p.critical[f.Name], P50: need, P95: need, P99: need, Samples: 1, Confidence: 1})
	}
	return fc, nil
}

type fakePartitioner struct{ misfit string }

func (p fakePartitioner) Plan(_ context.Context, _ hal.Vector, ds []partition.Demand) (partition.Plan, error) {
	var plan partition.Plan
	for _, d := range ds {
		if d.Function == p.misfit {
			plan.DoesNotFit = append(plan.DoesNotFit, partition.Misfit{Function: d.Function, Need: d.Peak, Reason: "fake"})
			continue
		}
		plan.Allocations = append(plan.Allocations, hal.Allocation{Function: d.Function, Guarantee: d.Peak, Limit: d.Peak})
	}
	return plan, nil
}

type fakeLease struct {
	calls    *[]string
	function string
}

func (l fakeLease) Invoke(_ context.Context, fn string, p []byte) ([]byte, error) {
	return append([]byte("remote:"), p...), nil
}
func (l fakeLease) Placements() []migrate.Placement {
	return []migrate.Placement{{Function: l.function, Target: "fake", Region: "nowhere"}}
}
func (l fakeLease) Return(context.Context) error { *l.calls = append(*l.calls, "return"); return nil }

type fakeMigrator struct{ calls *[]string }

func (m fakeMigrator) Migrate(_ context.Context, id string, specs []migrate.Spec) (updraft.Lease, error) {
	*m.calls = append(*m.calls, "migrate "+specs[0].Function)
	return fakeLease{m.calls, specs[0].Function}, nil
}
func (m fakeMigrator) Reattach(context.Context, string, []migrate.Spec) (updraft.Lease, error) {
	return nil, errors.New("fake: no lease to reattach")
}

type fakeSnapshotter struct{ calls *[]string }

func (s fakeSnapshotter) Snapshot(context.Context) (snapshot.Manifest, error) {
	*s.calls = append(*s.calls, "snapshot")
	return snapshot.Manifest{ID: "snap-1"}, nil
}
func (s fakeSnapshotter) Restore(_ context.Context, m snapshot.Manifest, sources ...string) error {
	*s.calls = append(*s.calls, fmt.Sprint("restore ", m.ID, sources))
	return nil
}

type fakeDegrader struct{ calls *[]string }

func (d fakeDegrader) Set(fn string, p degrade.Policy, _ string, _ time.Time) error {
	*d.calls = append(*d.calls, fmt.Sprint("set ", fn, " ", p.Mode))
	return nil
}
func (d fakeDegrader) Clear(fn string) error                    { return nil }
func (d fakeDegrader) Acquire(string) (release func(), _ error) { return func() {}, nil }

type fakeValidator struct{ verdict validate.Verdict }

func (v fakeValidator) Validate(context.Context) (validate.Report, error) {
	return validate.Report{Verdict: v.verdict, Score: 1, Results: []validate.Result{{Check: "fake", Verdict: v.verdict}}}, nil
}

type fakeDevice struct {
	calls *[]string
}

func (d fakeDevice) Capacity(context.Context) (hal.Vector, error) { return hal.Vector{hal.CPU: 8}, nil }
func (d fakeDevice) Apply(_ context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	*d.calls = append(*d.calls, fmt.Sprintf("apply %d", len(allocs)))
	return func(context.Context) error { *d.calls = append(*d.calls, "undo"); return nil }, nil
}

// memJournal is an in-memory JournalStore and Locker.
type memJournal struct {
	mu      sync.Mutex
	records map[string][]byte
	puts    int
}

func newMemJournal() *memJournal { return &memJournal{records: map[string][]byte{}} }

func (j *memJournal) PutRecord(_ context.Context, name string, data []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.records[name] = append([]byte(nil), data...)
	j.puts++
	return nil
}

func (j *memJournal) GetRecord(_ context.Context, name string) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	data, ok := j.records[name]
	if !ok {
		return nil, fmt.Errorf("record %q: %w", name, snapshot.ErrNotFound)
	}
	return append([]byte(nil), data...), nil
}

func (j *memJournal) DeleteRecord(_ context.Context, name string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.records, name)
	return nil
}

func (j *memJournal) record(name string) []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.records[name]
}

// TestFullUpdateThroughFakes drives one committed update through a fake of
// every collaborator and checks the order in which the Orchestrator used them.
func TestFullUpdateThroughFakes(t *testing.T) {
	var calls []string
	journal := newMemJournal()
	o, err := updraft.New([]updraft.Function{
		{Name: "forward", Criticality: updraft.Critical},
		{Name: "stats", Func: func(context.Context, []byte) ([]byte, error) { return []byte("local"), nil }, Remote: &updraft.Remote{}},
		{Name: "reports"},
	}, fakeDevice{&calls}, updraft.Options{
		Profiler:    fakeProfiler{critical: map[string]bool{"forward": true}},
		Partitioner: fakePartitioner{misfit: "stats"},
		Migrator:    fakeMigrator{&calls},
		Snapshotter: fakeSnapshotter{&calls},
		Degrader:    fakeDegrader{&calls},
		Validator:   fakeValidator{validate.Pass},
		Journal:     journal,
	})
	require.NoError(t, err)
	var during []byte
	report, err := o.PrepareForUpdate(context.Background(), updraft.UpdateFuncs{
		ApplyFunc: func(ctx context.Context) error {
			calls = append(calls, "apply")
			during, err = o.Invoke(ctx, "stats", []byte("x"))
			return err
		},
		RollbackFunc: func(context.Context) error { calls = append(calls, "rollback"); return nil },
	})
	require.NoError(t, err, report.String())
	assert.Equal(t, updraft.Committed, report.Outcome)
	assert.Equal(t, "remote:x", string(during), "a migrated function is invoked through its lease")
	assert.Equal(t, []string{"migrate stats", "snapshot", "apply 2", "apply", "undo", "return"}, calls)
	assert.Nil(t, journal.record(updraft.JournalRecord), "a finished update leaves no journal")
	assert.GreaterOrEqual(t, journal.puts, 5, "the journal was written ahead of each change")

	// The same fakes, with a failing verdict: the host's rollback and the
	// snapshot's restore run, then the compensations.
	calls = nil
	o, err = updraft.New([]updraft.Function{{Name: "forward", Criticality: updraft.Critical}, {Name: "reports"}}, fakeDevice{&calls}, updraft.Options{
		Profiler: fakeProfiler{}, Partitioner: fakePartitioner{misfit: "reports"}, Snapshotter: fakeSnapshotter{&calls},
		Degrader: fakeDegrader{&calls}, Validator: fakeValidator{validate.Fail}, Journal: journal,
	})
	require.NoError(t, err)
	report, err = o.PrepareForUpdate(context.Background(), updraft.UpdateFuncs{
		ApplyFunc:    func(context.Context) error { calls = append(calls, "apply"); return nil },
		RollbackFunc: func(context.Context) error { calls = append(calls, "rollback"); return nil },
	})
	require.Error(t, err)
	assert.Equal(t, updraft.RolledBack, report.Outcome)
	assert.Equal(t, []string{"snapshot", "apply 1", "set reports disable", "apply", "rollback", "restore snap-1[]", "undo"}, calls)
	assert.ErrorContains(t, err, `check "fake" fail`)
}
