package hal_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

func TestRegistry(t *testing.T) {
	// hal/sim registers itself as "sim" in init.
	assert.Contains(t, hal.Drivers(), "sim")

	dev, err := hal.Open("sim", `{"capacity": {"cpu": 4, "memory": 1024}}`)
	require.NoError(t, err)
	capacity, err := dev.Capacity(context.Background())
	require.NoError(t, err)
	assert.Equal(t, hal.Vector{hal.CPU: 4, hal.Memory: 1024}, capacity)

	_, err = hal.Open("no-such-driver", "")
	require.ErrorContains(t, err, `unknown driver "no-such-driver"`)

	_, err = hal.Open("sim", `{"capacity": {"cpu": -1}}`)
	require.ErrorContains(t, err, `"capacity"`)
	_, err = hal.Open("sim", `{`)
	require.ErrorContains(t, err, "sim: config")
}

func TestRegisterPanics(t *testing.T) {
	d := hal.DriverFunc(func(string) (hal.Device, error) { return sim.New(nil), nil })
	assert.PanicsWithValue(t, "hal: Register driver is nil", func() { hal.Register("x", nil) })
	assert.PanicsWithValue(t, "hal: Register driver name is empty", func() { hal.Register("", d) })
	hal.Register("registry-test", d)
	assert.PanicsWithValue(t, "hal: Register called twice for driver registry-test", func() { hal.Register("registry-test", d) })
	assert.IsNonDecreasing(t, hal.Drivers())
}

func TestOpenDriverSkipsRegistry(t *testing.T) {
	want := errors.New("boom")
	_, err := hal.OpenDriver(hal.DriverFunc(func(string) (hal.Device, error) { return nil, want }), "")
	require.ErrorIs(t, err, want)
}
