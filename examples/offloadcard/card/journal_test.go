package card_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/examples/offloadcard/card"
	"github.com/updraft-dev/updraft/hal"
)

// journaled applies allocs with ApplyJournaled and returns the last record.
func journaled(t *testing.T, k *card.Card, allocs []hal.Allocation) ([]byte, hal.Undo) {
	t.Helper()
	var rec []byte
	undo, err := k.ApplyJournaled(ctx, allocs, func(r []byte) error {
		rec = append([]byte(nil), r...)
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, rec)
	return rec, undo
}

// second is an Apply over a card that already has fw and log configured:
// fw grows, log loses its limit, nat is new, so the record holds present,
// changed and absent quotas and queues that change hands.
var second = []hal.Allocation{
	{Function: "fw", Guarantee: hal.Vector{card.Queue: 3, card.Flow: 30}},
	{Function: "log", Guarantee: hal.Vector{card.Queue: 0, card.Flow: 5}},
	{Function: "nat", Guarantee: hal.Vector{card.Queue: 1, card.Flow: 1}, Limit: hal.Vector{card.Flow: 7}},
}

func configured(t *testing.T, config string) *card.Card {
	t.Helper()
	k := open(t, config)
	_, err := k.Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{card.Queue: 1, card.Flow: 20}, Limit: hal.Vector{card.Flow: 60}},
		{Function: "log", Guarantee: hal.Vector{card.Queue: 2, card.Flow: 10}, Limit: hal.Vector{card.Flow: 10}},
	})
	require.NoError(t, err)
	return k
}

func TestUndoRecordRestoresExactly(t *testing.T) {
	k := configured(t, `{"queues": 6, "flows": 100}`)
	before := snap(k)
	rec, _ := journaled(t, k, second)
	require.NotEqual(t, before, snap(k))
	require.NoError(t, k.UndoRecord(ctx, rec))
	if d := cmp.Diff(before, snap(k)); d != "" {
		t.Fatalf("UndoRecord did not restore the card (-before +after):\n%s", d)
	}
	require.NoError(t, k.UndoRecord(ctx, rec), "twice")
	assert.Empty(t, cmp.Diff(before, snap(k)))
}

func TestUndoRecordAfterUndo(t *testing.T) {
	k := configured(t, `{"queues": 6, "flows": 100}`)
	before := snap(k)
	rec, undo := journaled(t, k, second)
	require.NoError(t, undo(ctx))
	assert.Empty(t, cmp.Diff(before, snap(k)))
	require.NoError(t, k.UndoRecord(ctx, rec))
	assert.Empty(t, cmp.Diff(before, snap(k)))
	require.NoError(t, undo(ctx), "the Undo after UndoRecord does nothing")
	assert.Empty(t, cmp.Diff(before, snap(k)))
}

func TestUndoRecordOnACardOpenedAgain(t *testing.T) {
	config := fmt.Sprintf(`{"queues": 6, "flows": 100, "state": %q}`, filepath.Join(t.TempDir(), "card.json"))
	k := configured(t, config)
	before := snap(k)
	rec, _ := journaled(t, k, second)
	applied := snap(k)

	again := open(t, config) // a new process would open the card like this
	assert.Empty(t, cmp.Diff(applied, snap(again)), "the reopened card holds the applied configuration")
	require.NoError(t, again.UndoRecord(ctx, rec))
	assert.Empty(t, cmp.Diff(before, snap(again)))
	assert.Empty(t, cmp.Diff(before, snap(open(t, config))), "and so does the file")
}

func TestJournalErrorChangesNothing(t *testing.T) {
	k := configured(t, `{"queues": 6, "flows": 100}`)
	before := snap(k)
	boom := errors.New("journal store down")
	_, err := k.ApplyJournaled(ctx, second, func([]byte) error { return boom })
	require.ErrorIs(t, err, boom)
	assert.Empty(t, cmp.Diff(before, snap(k)))
	_, err = k.ApplyJournaled(ctx, second, nil)
	require.ErrorContains(t, err, "journal is nil")
}

func TestUndoRecordRefusesBadRecords(t *testing.T) {
	k := configured(t, `{"queues": 6, "flows": 100}`)
	rec, _ := journaled(t, k, second)
	before := snap(k)
	other := configured(t, `{"queues": 8, "flows": 100}`)
	for _, c := range []struct{ rec, want string }{
		{`not json`, "card: undo record"},
		{`{"v": 2, "device": "offloadcard", "queues": 6}`, "version 2"},
		{`{"v": 1, "device": "sim", "queues": 6}`, `device "sim"`},
		{`{"v": 1, "device": "offloadcard", "queues": 6, "owners": {"6": "fw"}}`, "queue 6 is outside 0..5"},
		{`{"v": 1, "device": "offloadcard", "queues": 6, "quotas": {"fw": {"reserved": 101, "limit": 3}}}`, `function "fw"`},
		{`{"v": 1, "device": "offloadcard", "queues": 6, "extra": 1}`, `"extra"`},
		{`{"v": 1, "device": "offloadcard", "queues": 6} {}`, "data after"},
	} {
		err := k.UndoRecord(ctx, []byte(c.rec))
		require.Error(t, err, c.rec)
		assert.Contains(t, err.Error(), c.want)
	}
	err := other.UndoRecord(ctx, rec)
	require.ErrorContains(t, err, `"queues": written for a card of 6 queues, this one has 8`)
	assert.Empty(t, cmp.Diff(before, snap(k)))
}

func TestUnitsAreWholeQueuesAndFlows(t *testing.T) {
	k := open(t, `{"queues": 6, "flows": 100}`)
	assert.Equal(t, map[hal.Resource]hal.Unit{card.Queue: {Step: 1}, card.Flow: {Step: 1}}, hal.UnitsOf(k))
}

func TestStateFileRefusedWhenItDoesNotFit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	configured(t, fmt.Sprintf(`{"queues": 6, "flows": 100, "state": %q}`, path))
	_, err := hal.Open("offloadcard", fmt.Sprintf(`{"queues": 8, "flows": 100, "state": %q}`, path))
	require.ErrorContains(t, err, "written for a card of 6 queues")
	_, err = hal.Open("offloadcard", fmt.Sprintf(`{"queues": 6, "flows": 20, "state": %q}`, path))
	require.ErrorContains(t, err, "reservations total 30 flow entries, the table has 20")
}

func FuzzUndoRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"device":"offloadcard","queues":4,"owners":{"0":"fw","3":""},"quotas":{"fw":{"reserved":2,"limit":-1},"nat":null}}`))
	f.Add([]byte(`{"v":1,"device":"offloadcard","queues":4,"owners":{"-1":"fw"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		k, err := card.New(card.Config{Queues: 4, Flows: 10})
		require.NoError(t, err)
		if err := k.UndoRecord(ctx, rec); err != nil {
			return
		}
		// An accepted record leaves a card whose state is consistent:
		// every quota within the table, reservations within the table, and
		// the same record applied again changes nothing.
		s := snap(k)
		require.Len(t, s.Owners, 4)
		total := 0
		for f, q := range s.Quotas {
			total += q.Reserved
			require.NotEmpty(t, f)
			require.True(t, q.Reserved >= 0 && q.Reserved <= 10 && q.Limit >= 0 && q.Limit <= 10, "%q: %+v", f, q)
		}
		require.LessOrEqual(t, total, 10)
		require.NoError(t, k.UndoRecord(ctx, rec))
		require.Empty(t, cmp.Diff(s, snap(k)))
	})
}

// FuzzStateFile: a card opened on any state file either refuses it or
// holds a consistent configuration it writes back and reads again alike.
func FuzzStateFile(f *testing.F) {
	f.Add([]byte(`{"queues":4,"owners":["fw","","nat",""],"reserved":{"fw":3},"limit":{"fw":5}}`))
	f.Add([]byte(`{"queues":4,"owners":["","","",""],"reserved":{"fw":-1}}`))
	f.Add([]byte(`{"queues":2,"owners":[""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "card.json")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		k, err := card.New(card.Config{Queues: 4, Flows: 10, State: path})
		if err != nil {
			return
		}
		s := snap(k)
		require.Len(t, s.Owners, 4)
		total := 0
		for _, q := range s.Quotas {
			require.GreaterOrEqual(t, q.Reserved, 0)
			require.GreaterOrEqual(t, q.Limit, 0)
			total += q.Reserved
		}
		require.LessOrEqual(t, total, 10)
		// A change and its undo rewrite the file; it reads back the same.
		undo, err := k.Apply(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, undo(ctx))
		again, err := card.New(card.Config{Queues: 4, Flows: 10, State: path})
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(s, snap(again)))
	})
}
