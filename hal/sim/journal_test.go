package sim_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

var capacity = hal.Vector{hal.CPU: 4, hal.Memory: 1000}

// applyJournaled applies allocs and returns the last record journaled.
func applyJournaled(t *testing.T, dev hal.Journaled, allocs ...hal.Allocation) (hal.Undo, []byte) {
	t.Helper()
	var record []byte
	undo, err := dev.ApplyJournaled(context.Background(), allocs, func(r []byte) error {
		record = append([]byte(nil), r...)
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, record, "a record is journaled")
	return undo, record
}

func TestUndoRecordRestoresExactly(t *testing.T) {
	ctx := context.Background()
	dev := sim.New(capacity)
	_, err := dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}, {Function: "z", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.NoError(t, err)
	before := dev.Allocations()

	undo, record := applyJournaled(t, dev,
		hal.Allocation{Function: "a", Guarantee: hal.Vector{hal.CPU: 2}},
		hal.Allocation{Function: "b", Guarantee: hal.Vector{hal.Memory: 500}, Limit: hal.Vector{hal.Memory: 800}})
	require.Len(t, dev.Allocations(), 3)

	require.NoError(t, dev.UndoRecord(ctx, record))
	if diff := cmp.Diff(before, dev.Allocations()); diff != "" {
		t.Fatalf("after UndoRecord (-want +got):\n%s", diff)
	}
	require.NoError(t, dev.UndoRecord(ctx, record), "twice is safe")
	require.NoError(t, undo(ctx), "the Undo after UndoRecord is safe")
	assert.Empty(t, cmp.Diff(before, dev.Allocations()))
}

func TestUndoRecordInANewProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sim.json")
	dev, err := sim.Open(sim.Config{Capacity: capacity, StatePath: path})
	require.NoError(t, err)
	_, record := applyJournaled(t, dev, hal.Allocation{Function: "a", Guarantee: hal.Vector{hal.CPU: 2}})

	// What a new process sees: the allocation in force, and an undo from
	// the record alone.
	again, err := hal.Open("sim", `{"capacity":{"cpu":4,"memory":1000},"state":"`+path+`"}`)
	require.NoError(t, err)
	fresh := again.(*sim.Device)
	assert.Contains(t, fresh.Allocations(), "a")
	require.NoError(t, fresh.UndoRecord(ctx, record))
	assert.Empty(t, fresh.Allocations())

	third, err := sim.Open(sim.Config{Capacity: capacity, StatePath: path})
	require.NoError(t, err)
	assert.Empty(t, third.Allocations(), "the undo is in the state file")
}

func TestJournalFailureChangesNothing(t *testing.T) {
	dev := sim.New(capacity)
	_, err := dev.ApplyJournaled(context.Background(), []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}},
		func([]byte) error { return errors.New("store unreachable") })
	require.ErrorContains(t, err, "store unreachable")
	assert.Empty(t, dev.Allocations())
}

func TestUndoRecordRefusesBadRecords(t *testing.T) {
	dev := sim.New(capacity)
	for name, rec := range map[string]string{
		"garbage":        "not json",
		"other device":   `{"v":1,"device":"linux","before":{}}`,
		"newer version":  `{"v":2,"device":"sim","before":{}}`,
		"unknown field":  `{"v":1,"device":"sim","before":{},"extra":1}`,
		"misnamed":       `{"v":1,"device":"sim","before":{"a":{"Function":"b"}}}`,
		"bad allocation": `{"v":1,"device":"sim","before":{"a":{"Function":"a","Guarantee":{"cpu":-1}}}}`,
	} {
		err := dev.UndoRecord(context.Background(), []byte(rec))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "sim: undo record", name)
	}
}

func FuzzUndoRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"device":"sim","before":{"a":null,"b":{"Function":"b","Guarantee":{"cpu":1}}}}`))
	f.Add([]byte(`{"v":1,"device":"sim","before":{}}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		dev := sim.New(capacity)
		if err := dev.UndoRecord(context.Background(), rec); err != nil {
			return
		}
		// A record accepted leaves only valid allocations in force.
		for f, a := range dev.Allocations() {
			if a.Function != f || a.Validate() != nil {
				t.Fatalf("accepted record left %q: %+v", f, a)
			}
		}
	})
}
