package etcdstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

// TestSecondMachineIsRefusedNamingTheHolder: two Orchestrators, each with
// its own etcd client (two machines sharing the cluster), keep their
// journal in etcd; while one updates, the other is refused with the
// error naming the first; afterwards it updates.
func TestSecondMachineIsRefusedNamingTheHolder(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	orchestrator := func(holder string) *updraft.Orchestrator {
		store, err := New(ctx, c.client(t), Options{Prefix: "fleet/", LeaseTTL: 5 * time.Second})
		require.NoError(t, err)
		o, err := updraft.New([]updraft.Function{{Name: "forward", Criticality: updraft.Critical, Demand: hal.Vector{hal.CPU: 1}}},
			sim.New(hal.Vector{hal.CPU: 2}), updraft.Options{Store: store, Holder: holder, AllowNoChecks: true})
		require.NoError(t, err)
		return o
	}
	a, b := orchestrator("machine-a"), orchestrator("machine-b")

	applying, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := a.PrepareForUpdate(ctx, updraft.UpdateFuncs{
			ApplyFunc:    func(context.Context) error { close(applying); <-release; return nil },
			RollbackFunc: func(context.Context) error { return nil },
		})
		done <- err
	}()
	<-applying
	_, err := b.PrepareForUpdate(ctx, updraft.UpdateFuncs{
		ApplyFunc:    func(context.Context) error { return nil },
		RollbackFunc: func(context.Context) error { return nil },
	})
	require.ErrorIs(t, err, updraft.ErrUpdateInProgress)
	assert.Contains(t, err.Error(), `"machine-a"`)
	close(release)
	require.NoError(t, <-done)
	report, err := b.PrepareForUpdate(ctx, updraft.UpdateFuncs{
		ApplyFunc:    func(context.Context) error { return nil },
		RollbackFunc: func(context.Context) error { return nil },
	})
	require.NoError(t, err, report.String())
	assert.Equal(t, updraft.Committed, report.Outcome)
}
