package updraft

// TODO(lead): this file bridges to leaf APIs that land with the helpers'
// branches (snapshot.ErrLocked, migrate.ErrNotFound, Mover.Migrate with an
// id, Mover.Reattach). Delete it when they are merged.

import (
	"context"
	"errors"

	"github.com/updraft-dev/updraft/migrate"
)

var errLeaseNotFound = errors.New("pending: migrate.ErrNotFound")

// Mover adapts a *migrate.Mover to [Migrator].
func Mover(m *migrate.Mover) Migrator { return mover{m} }

type mover struct{ m *migrate.Mover }

func (a mover) Migrate(ctx context.Context, id string, specs []migrate.Spec) (Lease, error) {
	l, err := a.m.Migrate(ctx, specs)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (a mover) Reattach(ctx context.Context, id string, specs []migrate.Spec) (Lease, error) {
	return nil, errLeaseNotFound
}
