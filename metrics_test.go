package updraft

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// TestCollectorGathersEveryPart: the Orchestrator's collector registers
// cleanly and yields its own metrics and those of the snapshot engine and
// degrade controller New built.
func TestCollectorGathersEveryPart(t *testing.T) {
	o, err := New([]Function{
		{Name: "forward", Criticality: Critical, Demand: hal.Vector{hal.CPU: 1}, State: &sessionTable{rows: map[string]int64{"a": 1}}},
		{Name: "log", Criticality: NonCritical, Demand: hal.Vector{hal.CPU: 8}},
	}, sim.New(hal.Vector{hal.CPU: 2}), Options{Store: snapshot.NewMemStore(), Checks: []validate.Check{validate.Func("ok", func(context.Context) error { return nil })}})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(o.Collector()))
	_, err = o.PrepareForUpdate(context.Background(), UpdateFuncs{
		ApplyFunc: func(context.Context) error { return nil }, RollbackFunc: func(context.Context) error { return nil }})
	require.NoError(t, err)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"updraft_updates_total", "updraft_snapshot_pause_seconds", "updraft_degrade_mode", "updraft_validate_validations_total"} {
		assert.True(t, names[want], "%s gathered (got %v)", want, names)
	}
}
