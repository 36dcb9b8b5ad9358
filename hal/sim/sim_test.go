package sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

func TestApplyAndUndoRestoreExactly(t *testing.T) {
	ctx := context.Background()
	dev := sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 1000})
	first, err := dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.NoError(t, err)
	before := dev.Allocations()

	second, err := dev.Apply(ctx, []hal.Allocation{
		{Function: "a", Guarantee: hal.Vector{hal.CPU: 2}},
		{Function: "b", Guarantee: hal.Vector{hal.Memory: 500}, Limit: hal.Vector{hal.Memory: 800}},
	})
	require.NoError(t, err)
	assert.Len(t, dev.Allocations(), 2)

	require.NoError(t, second(ctx))
	assert.Empty(t, cmp.Diff(before, dev.Allocations()))
	require.NoError(t, first(ctx))
	assert.Empty(t, dev.Allocations())
}

func TestApplyRefusesOvercommitAndBadInput(t *testing.T) {
	ctx := context.Background()
	dev := sim.New(hal.Vector{hal.CPU: 2})
	_, err := dev.Apply(ctx, []hal.Allocation{
		{Function: "a", Guarantee: hal.Vector{hal.CPU: 1.5}},
		{Function: "b", Guarantee: hal.Vector{hal.CPU: 1}},
	})
	require.ErrorContains(t, err, "guarantees exceed capacity by cpu=0.5 cores")
	_, err = dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{"gpu": 1}}})
	require.ErrorContains(t, err, `function "a": unknown resource "gpu"`)
	_, err = dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: -1}}})
	require.ErrorContains(t, err, `function "a" guarantee`)
	assert.Empty(t, dev.Allocations(), "nothing was half-applied")
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	dev := sim.New(hal.Vector{hal.CPU: 2})
	boom := errors.New("boom")

	dev.FailApply(boom)
	_, err := dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, dev.Allocations())

	undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.NoError(t, err, "the fault fires once")
	dev.FailUndo(boom)
	require.ErrorIs(t, undo(ctx), boom)
	assert.Len(t, dev.Allocations(), 1, "a failed undo changes nothing")
	require.NoError(t, undo(ctx), "a later undo retries")
	assert.Empty(t, dev.Allocations())

	dev.FailCapacity(boom)
	_, err = dev.Capacity(ctx)
	require.ErrorIs(t, err, boom)
	dev.FailCapacity(nil)
	_, err = dev.Capacity(ctx)
	require.NoError(t, err)
}

func TestDelayHonoursContext(t *testing.T) {
	dev := sim.New(hal.Vector{hal.CPU: 2})
	dev.SetDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := dev.Apply(ctx, []hal.Allocation{{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, dev.Allocations())
}

func FuzzOpenConfig(f *testing.F) {
	f.Add(`{"capacity": {"cpu": 4}}`)
	f.Add(`{"capacity": {}}`)
	f.Add(`{"capacity": {"cpu": -4}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, config string) {
		dev, err := hal.Open("sim", config)
		if err != nil {
			return
		}
		capacity, err := dev.Capacity(context.Background())
		require.NoError(t, err)
		require.NoError(t, capacity.Validate(), "an opened device has a valid capacity")
	})
}
