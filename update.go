package updraft

import (
	"context"
	"errors"
)

// Update is the change the host makes to its data plane: a new binary, new
// firmware on an offload card, a new module or configuration. The host
// writes it; updraft decides when to call it.
type Update interface {
	// Apply performs the update. It runs after critical resources are
	// guaranteed and critical state is snapshotted.
	Apply(ctx context.Context) error
	// Rollback returns the data plane to the version before Apply. It runs
	// when Apply fails or validation judges the new version worse; after
	// it, updraft restores the snapshotted state.
	Rollback(ctx context.Context) error
}

// UpdateFuncs adapts two functions to [Update]. A nil RollbackFunc makes
// Rollback fail with [ErrNoRollback], so a failed update is reported as not
// rolled back rather than silently kept.
type UpdateFuncs struct {
	ApplyFunc    func(ctx context.Context) error
	RollbackFunc func(ctx context.Context) error
}

// ErrNoRollback is returned by [UpdateFuncs.Rollback] when no RollbackFunc is set.
var ErrNoRollback = errors.New("updraft: update has no rollback")

// Apply calls ApplyFunc.
func (u UpdateFuncs) Apply(ctx context.Context) error {
	if u.ApplyFunc == nil {
		return errors.New("updraft: update has no ApplyFunc")
	}
	return u.ApplyFunc(ctx)
}

// Rollback calls RollbackFunc, or returns ErrNoRollback.
func (u UpdateFuncs) Rollback(ctx context.Context) error {
	if u.RollbackFunc == nil {
		return ErrNoRollback
	}
	return u.RollbackFunc(ctx)
}
