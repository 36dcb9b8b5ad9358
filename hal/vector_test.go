package hal_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
)

func TestVectorArithmetic(t *testing.T) {
	a := hal.Vector{hal.CPU: 2, hal.Memory: 1 << 30}
	b := hal.Vector{hal.CPU: 0.5, "nic.queue": 4}

	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 2.5, hal.Memory: 1 << 30, "nic.queue": 4}, a.Add(b)))
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 1.5, hal.Memory: 1 << 30, "nic.queue": -4}, a.Sub(b)))
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 4, hal.Memory: 2 << 30}, a.Scale(2)))
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 2, hal.Memory: 1 << 30, "nic.queue": 4}, a.Max(b)))
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 0.5, hal.Memory: 0, "nic.queue": 0}, a.Min(b)))
	// Receivers are never modified.
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 2, hal.Memory: 1 << 30}, a))

	var nilVec hal.Vector
	assert.Empty(t, cmp.Diff(hal.Vector{hal.CPU: 0.5, "nic.queue": 4}, nilVec.Add(b)))
	assert.True(t, nilVec.IsZero())
	assert.False(t, a.IsZero())
}

func TestVectorFitsWithin(t *testing.T) {
	capacity := hal.Vector{hal.CPU: 4, hal.Memory: 8 << 30}
	tests := []struct {
		name      string
		demand    hal.Vector
		fits      bool
		shortfall hal.Vector
	}{
		{"empty", nil, true, hal.Vector{}},
		{"exact", hal.Vector{hal.CPU: 4, hal.Memory: 8 << 30}, true, hal.Vector{}},
		{"cpu over", hal.Vector{hal.CPU: 5}, false, hal.Vector{hal.CPU: 1}},
		{"unknown resource", hal.Vector{"nic.queue": 1}, false, hal.Vector{"nic.queue": 1}},
		{"unknown resource at zero", hal.Vector{"nic.queue": 0}, true, hal.Vector{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.fits, tt.demand.FitsWithin(capacity))
			assert.Empty(t, cmp.Diff(tt.shortfall, tt.demand.Shortfall(capacity)))
		})
	}
}

func TestVectorValidate(t *testing.T) {
	tests := []struct {
		v       hal.Vector
		wantErr string
	}{
		{hal.Vector{hal.CPU: 1}, ""},
		{hal.Vector{hal.CPU: -1}, `resource "cpu": quantity -1 is negative`},
		{hal.Vector{hal.Memory: math.NaN()}, `resource "memory": quantity is NaN`},
		{hal.Vector{hal.IO: math.Inf(1)}, `resource "io": quantity is infinite`},
		{hal.Vector{"": 1}, "empty resource name"},
	}
	for _, tt := range tests {
		err := tt.v.Validate()
		if tt.wantErr == "" {
			assert.NoError(t, err)
			continue
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.wantErr)
	}
}

func TestVectorString(t *testing.T) {
	v := hal.Vector{hal.CPU: 1.5, hal.Memory: 256 << 20, hal.IO: 10 << 20, "nic.queue": 8}
	assert.Equal(t, "cpu=1.5 cores io=10MiB/s memory=256MiB nic.queue=8", v.String())
}

func TestAllocationValidate(t *testing.T) {
	ok := hal.Allocation{Function: "fw", Guarantee: hal.Vector{hal.CPU: 1}, Limit: hal.Vector{hal.CPU: 2}}
	require.NoError(t, ok.Validate())

	below := hal.Allocation{Function: "fw", Guarantee: hal.Vector{hal.CPU: 2}, Limit: hal.Vector{hal.CPU: 1}}
	err := below.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `function "fw" resource "cpu": limit 1 cores is below guarantee 2 cores`)

	nan := hal.Allocation{Function: "fw", Limit: hal.Vector{hal.Memory: math.NaN()}}
	require.ErrorContains(t, nan.Validate(), `function "fw" limit`)

	require.ErrorContains(t, hal.Allocation{}.Validate(), "no function name")
}
