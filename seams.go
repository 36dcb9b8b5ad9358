package updraft

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// The Orchestrator depends on each collaborator through one of the small
// interfaces below, declared here where they are used (as database/sql
// declares what it needs of a driver). The packages return concrete types
// that satisfy them — *profile.Analyzer, *partition.Planner,
// *snapshot.Engine, *degrade.Controller, *validate.Suite, and
// *migrate.Mover through [Mover] — so every phase can be replaced by a
// few lines in a test, and a host links only what it uses.

// Profiler forecasts each function's demand over the update window and
// judges its criticality. [profile.New] returns one; [profile.Static]
// answers from fixed demands.
type Profiler interface {
	Forecast(ctx context.Context, window time.Duration, functions []profile.Function) (profile.Forecast, error)
}

// Partitioner plans how the devices' capacity is shared during the window.
// [partition.New] returns one.
type Partitioner interface {
	Plan(ctx context.Context, capacity hal.Vector, demands []partition.Demand) (partition.Plan, error)
}

// Migrator moves the functions that do not fit to other capacity under a
// [Lease] whose id the Orchestrator chooses and journals first, so that a
// new process can find the lease again with Reattach. [Mover] adapts a
// *migrate.Mover.
type Migrator interface {
	// Migrate moves the functions of specs and returns the lease that
	// routes their invocations and brings them back.
	Migrate(ctx context.Context, lease string, specs []migrate.Spec) (Lease, error)
	// Reattach finds lease again, in this process or a new one; specs give
	// the local functions and states again. An error matching
	// migrate.ErrNotFound means nothing of that lease remains to return.
	Reattach(ctx context.Context, lease string, specs []migrate.Spec) (Lease, error)
}

// Lease is what a migration returns: invocations of the moved functions go
// through it, and Return brings the functions and their state home.
type Lease interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
	Placements() []migrate.Placement
	// Return is idempotent and may be retried.
	Return(ctx context.Context) error
}

// Snapshotter takes a consistent cut of the critical state and restores
// it. The default is a [snapshot.Engine] over Options.Store and the
// functions' State, built once by [New].
type Snapshotter interface {
	Snapshot(ctx context.Context) (snapshot.Manifest, error)
	// Restore verifies the whole snapshot and restores the named sources
	// (every source when none is named).
	Restore(ctx context.Context, m snapshot.Manifest, sources ...string) error
}

// Degrader reduces functions for the window and admits their calls.
// [degrade.Controller] is one; keep a reference to it to mount its HTTP
// middleware and status handler.
type Degrader interface {
	Set(function string, p degrade.Policy, reason string, until time.Time) error
	Clear(function string) error
	Acquire(function string) (release func(), err error)
}

// Validator judges the updated data plane. [validate.New] returns one over
// checks. A Validator that also implements [BaselineRecorder] measures the
// data plane before anything changes.
type Validator interface {
	Validate(ctx context.Context) (validate.Report, error)
}

// BaselineRecorder is an optional interface of a [Validator]: the baseline
// phase calls RecordBaseline before the update.
type BaselineRecorder interface {
	RecordBaseline(ctx context.Context) error
}

// JournalStore keeps the update journal: one small record per update,
// written ahead of every change so that [Orchestrator.Resume] can finish
// what a crashed process started. [snapshot.FileStore], [snapshot.MemStore]
// and snapshot/etcdstore implement it; Options.Store is used when it does.
type JournalStore interface {
	// PutRecord stores data under name atomically and durably.
	PutRecord(ctx context.Context, name string, data []byte) error
	// GetRecord returns the record, or an error matching snapshot.ErrNotFound.
	GetRecord(ctx context.Context, name string) ([]byte, error)
	// DeleteRecord removes the record; a missing one is not an error.
	DeleteRecord(ctx context.Context, name string) error
}

// Locker is an optional interface of a [JournalStore] that keeps one
// update at a time across processes and machines sharing it. Lock does not
// wait: while another holder has the lock it returns an error matching
// snapshot.ErrLocked that names the holder.
type Locker interface {
	Lock(ctx context.Context, name, holder string) (unlock func(context.Context) error, err error)
}

// journaledDevice is the optional driver interface through which a
// device's Apply can be undone by a new process (see hal.Journaled).
type journaledDevice interface {
	ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func(record []byte) error) (hal.Undo, error)
	UndoRecord(ctx context.Context, record []byte) error
}
