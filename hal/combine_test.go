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
