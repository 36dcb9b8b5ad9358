package hal_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

func TestCombineSplitsAllocationsByResource(t *testing.T) {
	ctx := context.Background()
	host := sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30})
	card := sim.New(hal.Vector{"nic.queue": 16})
	dev := hal.Combine(host, card)

	capacity, err := dev.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30, "nic.queue": 16}, capacity)

	undo, err := dev.Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{hal.CPU: 2, "nic.queue": 8}, Limit: hal.Vector{hal.CPU: 3}},
		{Function: "log", Guarantee: hal.Vector{hal.Memory: 1 << 20}},
	})
	require.NoError(t, err)
	assert.Empty(t, cmp.Diff(map[string]hal.Allocation{
		"fw":  {Function: "fw", Guarantee: hal.Vector{hal.CPU: 2}, Limit: hal.Vector{hal.CPU: 3}},
		"log": {Function: "log", Guarantee: hal.Vector{hal.Memory: 1 << 20}, Limit: hal.Vector{}},
	}, host.Allocations()))
	assert.Empty(t, cmp.Diff(map[string]hal.Allocation{
		"fw": {Function: "fw", Guarantee: hal.Vector{"nic.queue": 8}, Limit: hal.Vector{}},
	}, card.Allocations()))

	require.NoError(t, undo(ctx))
	require.NoError(t, undo(ctx), "a second undo does nothing")
	assert.Empty(t, host.Allocations())
	assert.Empty(t, card.Allocations())
}

func TestCombineUndoesEarlierDevicesWhenOneFails(t *testing.T) {
	ctx := context.Background()
	host := sim.New(hal.Vector{hal.CPU: 4})
	card := sim.New(hal.Vector{"nic.queue": 16})
	boom := errors.New("card firmware busy")
	card.FailApply(boom)

	_, err := hal.Combine(host, card).Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{hal.CPU: 1, "nic.queue": 1}},
	})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, host.Allocations(), "the host's part was undone")
	ops := []string{}
	for _, e := range host.History() {
		ops = append(ops, e.Op)
	}
	assert.Equal(t, []string{"apply", "undo"}, ops)
}

func TestCombineRejectsSharedResources(t *testing.T) {
	_, err := hal.Combine(sim.New(hal.Vector{hal.CPU: 1}), sim.New(hal.Vector{hal.CPU: 2})).Capacity(context.Background())
	require.ErrorContains(t, err, `resource "cpu" is offered by devices 0 and 1`)
}

func TestCombineUsage(t *testing.T) {
	host := sim.New(hal.Vector{hal.CPU: 4})
	host.SetUsage("fw", hal.Vector{hal.CPU: 0.5})
	m, ok := hal.Combine(host).(hal.Meter)
	require.True(t, ok)
	u, err := m.Usage(context.Background(), "fw")
	require.NoError(t, err)
	assert.Equal(t, hal.Vector{hal.CPU: 0.5}, u)
	_, err = m.Usage(context.Background(), "nobody")
	require.ErrorIs(t, err, hal.ErrUnknownFunction)
}

// panicky panics in Apply after the devices before it applied.
type panicky struct{ hal.Device }

func (p panicky) Apply(context.Context, []hal.Allocation) (hal.Undo, error) { panic("driver bug") }

func TestCombineUndoesEarlierDevicesWhenOnePanics(t *testing.T) {
	host := sim.New(hal.Vector{hal.CPU: 4})
	card := panicky{sim.New(hal.Vector{"nic.queue": 16})}
	dev := hal.Combine(host, card)
	require.PanicsWithValue(t, "driver bug", func() {
		_, _ = dev.Apply(context.Background(), []hal.Allocation{{Function: "fw", Guarantee: hal.Vector{hal.CPU: 2, "nic.queue": 8}}})
	})
	assert.Empty(t, host.Allocations(), "the host's part was undone before the panic went on")
}

func TestCombineIsJournaledWhenEveryDeviceIs(t *testing.T) {
	ctx := context.Background()
	_, ok := hal.Combine(sim.New(hal.Vector{hal.CPU: 4}), panicky{sim.New(hal.Vector{"q": 1})}).(hal.Journaled)
	assert.False(t, ok, "a device that cannot journal makes the whole unjournaled")

	dir := t.TempDir()
	open := func() (*sim.Device, *sim.Device, hal.Journaled) {
		host, err := sim.Open(sim.Config{Capacity: hal.Vector{hal.CPU: 4}, StatePath: dir + "/host.json"})
		require.NoError(t, err)
		card, err := sim.Open(sim.Config{Capacity: hal.Vector{"nic.queue": 16}, StatePath: dir + "/card.json"})
		require.NoError(t, err)
		j, ok := hal.Combine(host, card).(hal.Journaled)
		require.True(t, ok)
		return host, card, j
	}
	host, card, dev := open()
	_, err := host.Apply(ctx, []hal.Allocation{{Function: "old", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.NoError(t, err)
	hostBefore, cardBefore := host.Allocations(), card.Allocations()
	var record []byte
	_, err = dev.ApplyJournaled(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{hal.CPU: 2, "nic.queue": 8}},
		{Function: "old", Guarantee: hal.Vector{hal.CPU: 0.5}},
	}, func(r []byte) error { record = append([]byte(nil), r...); return nil })
	require.NoError(t, err)
	require.Contains(t, card.Allocations(), "fw")

	// A new process: the same devices opened again, undone from the record.
	host2, card2, dev2 := open()
	require.NoError(t, dev2.UndoRecord(ctx, record))
	assert.Empty(t, cmp.Diff(hostBefore, host2.Allocations()))
	assert.Empty(t, cmp.Diff(cardBefore, card2.Allocations()))
	require.NoError(t, dev2.UndoRecord(ctx, record), "twice is safe")

	for name, bad := range map[string]string{
		"garbage":     "x",
		"version":     `{"v":2,"parts":[null,null]}`,
		"wrong count": `{"v":1,"parts":[null]}`,
	} {
		err := dev2.UndoRecord(ctx, []byte(bad))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "combined undo record", name)
	}
}

func FuzzCombinedUndoRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"parts":[null,"eyJ2IjoxLCJkZXZpY2UiOiJzaW0iLCJiZWZvcmUiOnt9fQ=="]}`))
	f.Add([]byte(`{"v":1,"parts":[null,null]}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		host, card := sim.New(hal.Vector{hal.CPU: 4}), sim.New(hal.Vector{"q": 4})
		dev := hal.Combine(host, card).(hal.Journaled)
		_ = dev.UndoRecord(context.Background(), rec) // must not panic
		for _, d := range []*sim.Device{host, card} {
			for f, a := range d.Allocations() {
				if a.Function != f || a.Validate() != nil {
					t.Fatalf("record left %q: %+v", f, a)
				}
			}
		}
	})
}
