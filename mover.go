package updraft

import (
	"context"

	"github.com/updraft-dev/updraft/migrate"
)

// Mover adapts a *migrate.Mover to [Migrator]: leases are named by the
// Orchestrator (which journals the name first) and found again by name
// in a new process.
func Mover(m *migrate.Mover) Migrator { return mover{m} }

type mover struct{ m *migrate.Mover }

func (a mover) Migrate(ctx context.Context, id string, specs []migrate.Spec) (Lease, error) {
	l, err := a.m.Migrate(ctx, id, specs)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (a mover) Reattach(ctx context.Context, id string, specs []migrate.Spec) (Lease, error) {
	l, err := a.m.Reattach(ctx, id, specs)
	if err != nil {
		return nil, err
	}
	return l, nil
}
