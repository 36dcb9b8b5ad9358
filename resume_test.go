package updraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// memRecords is an in-memory JournalStore for this package's tests.
type memRecords struct {
	mu      sync.Mutex
	records map[string][]byte
}

func newMemRecords() *memRecords { return &memRecords{records: map[string][]byte{}} }

func (m *memRecords) PutRecord(_ context.Context, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[name] = append([]byte(nil), data...)
	return nil
}

func (m *memRecords) GetRecord(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.records[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, snapshot.ErrNotFound)
	}
	return append([]byte(nil), d...), nil
}

func (m *memRecords) DeleteRecord(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, name)
	return nil
}

// resumeHost is one process's view of a host, for tests that "crash" an
// update part way (the goroutine running it exits at a hook point, as if
// the process died there, leaving the journal and the store) and then run
// Resume in a new Orchestrator over the same journal, store and device.
type resumeHost struct {
	// instance is shared by every Orchestrator of the host: these tests
	// "crash" a goroutine, and the critical state lives on, as in a
	// process that survives (a fresh process restores it: see
	// TestCrashMatrix).
	instance string
	journal  *memRecords
	store    *snapshot.MemStore
	dev      *sim.Device
	state    *sessionTable
	applied  bool
	rolled   int
	fail     bool // the update fails validation
}

func newResumeHost() *resumeHost {
	return &resumeHost{instance: randomHex(8), journal: newMemRecords(), store: snapshot.NewMemStore(), dev: sim.New(hal.Vector{hal.CPU: 4}),
		state: &sessionTable{rows: map[string]int64{"a": 1, "b": 2}}}
}

// orchestrator builds a fresh Orchestrator over the host's journal, store,
// device and state.
func (h *resumeHost) orchestrator(t *testing.T) *Orchestrator {
	t.Helper()
	o, err := New([]Function{
		{Name: "sessions", Criticality: Critical, State: h.state, Demand: hal.Vector{hal.CPU: 1}},
		{Name: "reports", Criticality: NonCritical, Demand: hal.Vector{hal.CPU: 8}},
	}, h.dev, Options{Store: h.store, Journal: h.journal, Profiler: profile.Static{Demand: map[string]hal.Vector{
		"sessions": {hal.CPU: 1}, "reports": {hal.CPU: 8},
	}}, Checks: []validate.Check{validate.Func("new version healthy", func(context.Context) error {
		if h.fail {
			return errors.New("unhealthy")
		}
		return nil
	})}})
	require.NoError(t, err)
	o.instance = h.instance
	return o
}

func (h *resumeHost) update() Update {
	return UpdateFuncs{
		ApplyFunc: func(context.Context) error {
			h.applied = true
			h.state.add("a") // the new version changes critical state
			return nil
		},
		RollbackFunc: func(context.Context) error { h.rolled++; return nil },
	}
}

// crashAt runs an update that stops dead at point, as if the process had
// been killed there.
func (h *resumeHost) crashAt(t *testing.T, point string) {
	t.Helper()
	h.crashIn(t, "the update", point, func(o *Orchestrator) { _, _ = o.PrepareForUpdate(context.Background(), h.update()) })
}

// crashResumeAt runs Resume in a fresh Orchestrator that stops dead at point.
func (h *resumeHost) crashResumeAt(t *testing.T, point string) {
	t.Helper()
	h.crashIn(t, "Resume", point, func(o *Orchestrator) { _, _ = o.Resume(context.Background(), h.update()) })
}

// crashIn runs run in a fresh Orchestrator whose goroutine exits at point.
func (h *resumeHost) crashIn(t *testing.T, what, point string, run func(*Orchestrator)) {
	t.Helper()
	o := h.orchestrator(t)
	reached := false
	o.hook = func(p string) {
		if p == point {
			reached = true
			runtime.Goexit()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(o)
	}()
	<-done
	require.True(t, reached, "%s never reached %q", what, point)
}

// TestResumeFinishesWhatACrashLeft: for every point of an update that
// commits and of one that fails validation, a crash there and a Resume in a
// fresh Orchestrator leave the device as it was, critical state as it was
// (rolled back) or as the new version left it (committed), and nothing in
// the journal. A second Resume finds nothing to do.
func TestResumeFinishesWhatACrashLeft(t *testing.T) {
	for _, fail := range []bool{false, true} {
		scenario := map[bool]string{false: "commit", true: "fail"}[fail]
		points := hookPoints(t, fail)
		require.GreaterOrEqual(t, len(points), 20, "%s: too few crash points: %v", scenario, points)
		validatedAt := slices.Index(points, "validate:journaled") // a pass not yet journaled is rolled back
		applyAt := slices.Index(points, "update:apply")           // Apply is journaled as started from here on
		for i, point := range points {
			t.Run(scenario+"/"+point, func(t *testing.T) {
				h := newResumeHost()
				h.fail = fail
				before := h.dev.Allocations()
				h.crashAt(t, point)

				o := h.orchestrator(t)
				_, err := o.PrepareForUpdate(context.Background(), h.update())
				require.ErrorIs(t, err, ErrUnfinishedUpdate, "an unfinished update blocks a new one")
				report, err := o.Resume(context.Background(), h.update())
				require.NoError(t, err, report.String())
				assert.Empty(t, h.journal.records, "nothing is owed after Resume")
				assert.Equal(t, before, h.dev.Allocations(), "the device is as it was:\n%s", report)
				a, _ := h.state.get("a")
				switch validated := validatedAt >= 0 && i >= validatedAt; {
				case validated:
					assert.Equal(t, int64(2), a, "committed: the new version's state stays")
					assert.Zero(t, h.rolled)
				case i >= applyAt:
					assert.Equal(t, int64(1), a, "rolled back: the snapshot's state is restored")
					assert.LessOrEqual(t, h.rolled, 2, "the host's rollback ran, at most once more after the crash")
					assert.GreaterOrEqual(t, h.rolled, 1)
				default:
					assert.Equal(t, int64(1), a, "the update never ran")
					assert.Zero(t, h.rolled)
				}
				again, err := o.Resume(context.Background(), h.update())
				require.NoError(t, err)
				assert.Equal(t, NothingToResume, again.Outcome)
			})
		}
	}
}

// hookPoints lists the points an update of a fresh host passes, in order.
func hookPoints(t *testing.T, fail bool) []string {
	h := newResumeHost()
	h.fail = fail
	o := h.orchestrator(t)
	var points []string
	o.hook = func(p string) { points = append(points, p) }
	_, _ = o.PrepareForUpdate(context.Background(), h.update())
	return points
}

// TestResumeRefusesABadJournal: a journal written by a newer version, a
// damaged one, or one pointing at a snapshot that is gone is refused with
// ErrBadJournal, and nothing changes.
func TestResumeRefusesABadJournal(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		journal    func(h *resumeHost) []byte
	}{
		{"newer version", "written by a newer updraft", func(*resumeHost) []byte {
			return []byte(`{"version":99,"update":"u1","heading":"forward"}`)
		}},
		{"damaged", "is not a journal", func(*resumeHost) []byte { return []byte(`{"version":1,"upd`) }},
		{"unknown field", "does not decode", func(*resumeHost) []byte {
			return []byte(`{"version":1,"update":"u1","heading":"forward","surprise":true}`)
		}},
		{"commit without validation", "heading commit without a recorded passing validation", func(*resumeHost) []byte {
			return []byte(`{"version":1,"update":"u1","heading":"commit"}`)
		}},
		{"snapshot gone", "is gone from the store", func(*resumeHost) []byte {
			b, _ := json.Marshal(journalEntry{Version: 1, Update: "u1", Heading: HeadingForward, ApplyStarted: true, Snapshot: "20261202-gone"})
			return b
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newResumeHost()
			data := tt.journal(h)
			h.journal.records[JournalRecord] = data
			o := h.orchestrator(t)
			report, err := o.Resume(context.Background(), h.update())
			require.ErrorIs(t, err, ErrBadJournal)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "nothing was changed")
			assert.Empty(t, report.Phases)
			assert.Equal(t, data, h.journal.records[JournalRecord], "the journal is left for the operator")
			assert.Zero(t, h.rolled)
			assert.Empty(t, h.dev.History())
		})
	}
}

// TestResumeNeedsTheUpdateToRollBack: a rollback owed to an update whose
// Apply started cannot be run without the Update; nothing changes.
func TestResumeNeedsTheUpdateToRollBack(t *testing.T) {
	h := newResumeHost()
	h.crashAt(t, "update:applied")
	o := h.orchestrator(t)
	_, err := o.Resume(context.Background(), nil)
	require.ErrorIs(t, err, ErrRollbackOwed)
	assert.NotEmpty(t, h.journal.records)
	report, err := o.Resume(context.Background(), h.update())
	require.NoError(t, err, report.String())
	assert.Equal(t, RolledBack, report.Outcome)
}

// TestResumeWithNothingToDo changes nothing and says so.
func TestResumeWithNothingToDo(t *testing.T) {
	h := newResumeHost()
	report, err := h.orchestrator(t).Resume(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, NothingToResume, report.Outcome)
	assert.Empty(t, report.Phases)
	assert.Empty(t, h.dev.History())
	_ = degrade.Normal
}

// TestResumeAfterACrashDuringResume: an update crashes at a point, the
// Resume that follows crashes at each point it passes in turn, and a
// third process's Resume ends the machine exactly as an uninterrupted
// Resume does.
func TestResumeAfterACrashDuringResume(t *testing.T) {
	for _, fail := range []bool{false, true} {
		scenario := map[bool]string{false: "commit", true: "fail"}[fail]
		points := hookPoints(t, fail)
		for _, point := range []string{"partition:applied", "update:applied", "validate:start"} {
			require.Contains(t, points, point)
			// What an uninterrupted Resume leaves, and the points it passes.
			ref := newResumeHost()
			ref.fail = fail
			ref.crashAt(t, point)
			var resumePoints []string
			o := ref.orchestrator(t)
			o.hook = func(p string) { resumePoints = append(resumePoints, p) }
			want, err := o.Resume(context.Background(), ref.update())
			require.NoError(t, err)
			wantA, _ := ref.state.get("a")
			require.NotEmpty(t, resumePoints, "Resume passes no hook point")
			for _, rp := range resumePoints {
				t.Run(scenario+"/"+point+"/resume-crash-at-"+rp, func(t *testing.T) {
					h := newResumeHost()
					h.fail = fail
					before := h.dev.Allocations()
					h.crashAt(t, point)
					h.crashResumeAt(t, rp)
					report, err := h.orchestrator(t).Resume(context.Background(), h.update())
					require.NoError(t, err, report.String())
					assert.Equal(t, want.Outcome, report.Outcome)
					assert.Empty(t, h.journal.records, "nothing is owed")
					assert.Equal(t, before, h.dev.Allocations(), "the device is as it was")
					a, _ := h.state.get("a")
					assert.Equal(t, wantA, a, "critical state as after an uninterrupted Resume")
					assert.LessOrEqual(t, h.rolled, ref.rolled+1, "the host's rollback ran at most once more")
				})
			}
		}
	}
}
