package hal_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/partition"
)

// A device's units convert to the planner's: partition.Unit has the
// fields of hal.Unit.
func TestUnitConvertsToPartitionUnit(t *testing.T) {
	assert.Equal(t, partition.Unit{Step: 1, Min: 128}, partition.Unit(hal.Unit{Step: 1, Min: 128}))
}

func TestUnitAllows(t *testing.T) {
	for _, tc := range []struct {
		u    hal.Unit
		q    float64
		want bool
	}{
		{hal.Unit{}, 0.3, true},
		{hal.Unit{Step: 1}, 0, true},
		{hal.Unit{Step: 1}, 3, true},
		{hal.Unit{Step: 1}, 2.2008, false},
		{hal.Unit{Step: 0.1}, 0.1 * 3, true}, // 0.30000000000000004
		{hal.Unit{Step: 128}, 256, true},
		{hal.Unit{Step: 128}, 255, false},
		{hal.Unit{Step: 1, Min: 128}, 0, true},
		{hal.Unit{Step: 1, Min: 128}, 11, false},
		{hal.Unit{Step: 1, Min: 128}, 128, true},
		{hal.Unit{Min: 0.5}, 0.25, false},
		{hal.Unit{Min: 0.5}, 0.75, true},
	} {
		assert.Equal(t, tc.want, tc.u.Allows(tc.q), "%+v allows %v", tc.u, tc.q)
	}
}

func TestUnitValidate(t *testing.T) {
	require.NoError(t, hal.Unit{Step: 1, Min: 2}.Validate())
	for _, u := range []hal.Unit{{Step: -1}, {Min: math.NaN()}, {Step: math.Inf(1)}} {
		assert.Error(t, u.Validate(), "%+v", u)
	}
}

func TestCheckUnitsNamesFunctionFieldAndResource(t *testing.T) {
	units := map[hal.Resource]hal.Unit{"fpga.qslot": {Step: 1}}
	err := hal.CheckUnits(units, hal.Allocation{Function: "forward", Guarantee: hal.Vector{"fpga.qslot": 2.2008, hal.CPU: 0.3}})
	require.ErrorIs(t, err, hal.ErrNotInUnits)
	assert.Contains(t, err.Error(), `"forward"`)
	assert.Contains(t, err.Error(), `guarantee "fpga.qslot"`)
	err = hal.CheckUnits(units, hal.Allocation{Function: "forward", Limit: hal.Vector{"fpga.qslot": 0.5}})
	require.ErrorIs(t, err, hal.ErrNotInUnits)
	assert.Contains(t, err.Error(), `limit "fpga.qslot"`)
	assert.NoError(t, hal.CheckUnits(units, hal.Allocation{Function: "forward", Guarantee: hal.Vector{"fpga.qslot": 3, hal.CPU: 0.3}}))
}

func TestCombineCarriesTheUnionOfUnits(t *testing.T) {
	host := sim.New(hal.Vector{hal.CPU: 4})
	card, err := sim.Open(sim.Config{
		Capacity: hal.Vector{"nic.queue": 16, "nic.flow": 4096},
		Units:    map[hal.Resource]hal.Unit{"nic.queue": {Step: 1}, "nic.flow": {Step: 1, Min: 128}},
	})
	require.NoError(t, err)
	fpga, err := sim.Open(sim.Config{Capacity: hal.Vector{"fpga.qslot": 8}, Units: map[hal.Resource]hal.Unit{"fpga.qslot": {Step: 1}}})
	require.NoError(t, err)

	for _, dev := range []hal.Device{hal.Combine(host, card, fpga), hal.Combine(host, hal.Combine(card, fpga))} {
		u, ok := dev.(hal.Units)
		require.True(t, ok, "a combined device implements hal.Units")
		assert.Empty(t, cmp.Diff(map[hal.Resource]hal.Unit{
			"nic.queue": {Step: 1}, "nic.flow": {Step: 1, Min: 128}, "fpga.qslot": {Step: 1},
		}, u.Units()))
	}
	assert.Empty(t, hal.UnitsOf(hal.Combine(host)), "no device reports units: all continuous")
	assert.Nil(t, hal.UnitsOf(host))
}

func TestSimRefusesAmountsOutsideItsUnits(t *testing.T) {
	card, err := sim.Open(sim.Config{Capacity: hal.Vector{"nic.queue": 16}, Units: map[hal.Resource]hal.Unit{"nic.queue": {Step: 1}}})
	require.NoError(t, err)
	_, err = card.Apply(t.Context(), []hal.Allocation{{Function: "fw", Guarantee: hal.Vector{"nic.queue": 2.5}}})
	require.ErrorIs(t, err, hal.ErrNotInUnits)
	assert.Empty(t, card.Allocations())

	_, err = sim.Open(sim.Config{Capacity: hal.Vector{"nic.queue": 16}, Units: map[hal.Resource]hal.Unit{"nic.flow": {Step: 1}}})
	assert.ErrorContains(t, err, `"nic.flow"`)
	_, err = sim.Open(sim.Config{Capacity: hal.Vector{"nic.queue": 16}, Units: map[hal.Resource]hal.Unit{"nic.queue": {Step: -1}}})
	assert.ErrorContains(t, err, `"nic.queue"`)
}
