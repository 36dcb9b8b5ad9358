package updraft

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/snapshot"
)

// Resume finishes the update that a crashed (or panicked, or replaced)
// process left in the journal, and returns its report. It commits only
// when a passing validation was recorded; otherwise it rolls back: the
// host's Rollback if Apply had started, the snapshot's state restored,
// the migrated functions brought home with their state, the device's
// allocation undone from its journaled record, degraded modes ended. It
// runs only the compensations still owed, each at most once to completion:
// a crash during Resume is finished by the next Resume.
//
// update is the host's update being resumed: Resume calls its Rollback
// when the journal says Apply had started and the update was not
// validated. It may be nil when the host has no update to offer; if a
// rollback is then owed, Resume changes nothing and returns
// [ErrRollbackOwed]. A process that starts should call Resume before
// anything else; with no journal it changes nothing and the report's
// outcome is [NothingToResume].
//
// A journal that cannot be resumed as it is — written by a newer version,
// damaged, pointing at a snapshot that is gone, or at a lease or device
// this Orchestrator cannot reach — is refused with an error wrapping
// [ErrBadJournal] that says what the operator can do, and nothing changes.
// Host code (Rollback included) must be idempotent: a crash between its
// success and the journal's record of it calls it again.
func (o *Orchestrator) Resume(ctx context.Context, update Update) (*Report, error) {
	r := o.newRun()
	r.report.Resumed = true
	return r.resume(ctx, update)
}

func (r *run) resume(ctx context.Context, update Update) (*Report, error) {
	o := r.o
	release, err := o.acquire(ctx)
	if err != nil {
		return r.end(err)
	}
	r.release = release
	defer r.releaseLock()
	o.current = r
	defer func() { o.current = nil }()
	e, err := readJournal(ctx, o.journal)
	if err != nil {
		return r.end(err)
	}
	if e == nil {
		r.report.Outcome = NothingToResume
		return r.end(nil)
	}
	r.report.Update = e.Update
	if err := o.checkResumable(ctx, e, update); err != nil {
		return r.end(err)
	}
	r.journal = &journal{store: o.journal, entry: *e}
	r.report.SnapshotID = e.Snapshot
	ctx = context.WithoutCancel(ctx)
	errs := multiError()
	// A process other than the one that ran the update lost the live
	// critical state with it: the snapshot is the latest consistent state
	// there is (unless the update hands the state over itself).
	lost := e.Process != o.instance && !updateKeepsState(update)
	if e.Heading == HeadingCommit {
		r.report.Outcome = Committed
		switch {
		case lost:
			errs = multierror.Append(errs, r.resumeRestoreLost(ctx))
		case !updateKeepsState(update):
			errs = multierror.Append(errs, r.resumeRestoreAfterUpdate(ctx))
		}
	} else {
		r.report.Outcome = RolledBack
		if !e.ApplyStarted {
			r.report.Outcome = Aborted
		}
		restoredBefore := e.done(PhaseRestore) // by the process that died, if lost
		if err := r.resumeRollback(ctx, update); err != nil {
			r.report.Outcome = RollbackFailed
			errs = multierror.Append(errs, err)
		}
		if lost && (!e.ApplyStarted || restoredBefore) {
			errs = multierror.Append(errs, r.resumeRestoreLost(ctx))
		}
		if r.handedOver {
			// The previous version's process took the data plane and the
			// journal over; it finishes the update.
			r.report.Outcome = HandedOver
			return r.end(nil)
		}
	}
	errs = multierror.Append(errs, r.resumeCompensations(ctx))
	for _, d := range e.Degraded {
		r.report.Degraded = append(r.report.Degraded, DegradeDecision{Function: d.Function, Mode: d.Mode, Until: d.Until,
			Reason: "recorded by the interrupted update; ended by Resume"})
	}
	err = r.settle(ctx, errs)
	return r.end(err)
}

// checkResumable refuses, before anything changes, a journal this
// Orchestrator cannot finish.
func (o *Orchestrator) checkResumable(ctx context.Context, e *journalEntry, update Update) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: update %s: "+format, append([]any{ErrBadJournal, e.Update}, args...)...)
	}
	rollbackOwed := e.Heading != HeadingCommit && e.ApplyStarted && !e.done(PhaseRollback)
	if rollbackOwed && update == nil {
		return fmt.Errorf("%w: update %s had started Apply and was not validated: call Resume with the Update so that its Rollback runs; nothing was changed", ErrRollbackOwed, e.Update)
	}
	if rollbackOwed {
		if err := (&run{report: &Report{}}).checkUpdate(update); err != nil {
			return err
		}
	}
	lost := e.Process != o.instance && !updateKeepsState(update)
	restoreOwed := e.Snapshot != "" && (lost || !e.done(PhaseRestore) &&
		(e.Heading != HeadingCommit && e.ApplyStarted || e.Heading == HeadingCommit && len(o.restoreAfterUpdate()) > 0))
	if restoreOwed {
		if o.snap == nil {
			return bad("the state of snapshot %s must be restored but this Orchestrator has no state sources: create it with the same functions and Store as the process that ran the update; nothing was changed", e.Snapshot)
		}
		if err := o.snapshotExists(ctx, e.Snapshot); err != nil {
			return bad("%v: the critical state cannot be restored; restore it from another copy, then delete the journal record %q; nothing was changed", err, JournalRecord)
		}
	}
	if e.Lease != nil && !e.done(PhaseReturn) {
		if o.opts.Migrator == nil {
			return bad("lease %s (functions %v) must be returned but Options.Migrator is nil: create the Orchestrator with the migrator the update used; nothing was changed", e.Lease.ID, e.Lease.Functions)
		}
		for _, fn := range e.Lease.Functions {
			if f := o.byName[fn]; f == nil || f.Remote == nil {
				return bad("lease %s holds function %q, which this Orchestrator does not declare with a Remote spec; nothing was changed", e.Lease.ID, fn)
			}
		}
	}
	if d := e.Device; d != nil && d.Record != nil && !e.done(PhaseUnpartition) {
		if _, ok := o.device.(journaledDevice); !ok {
			return bad("the allocation of device %s must be undone from its record, but this Orchestrator's device (%T) cannot undo records: create it with the same device; nothing was changed", d.Type, o.device)
		}
	}
	return nil
}

// snapshotExists checks that the store still holds snapshot id.
func (o *Orchestrator) snapshotExists(ctx context.Context, id string) error {
	if o.opts.Store == nil {
		return nil // a host's Snapshotter keeps its own store
	}
	var rc io.ReadCloser
	err := guard("Store.Open", func() (err error) {
		rc, err = o.opts.Store.Open(ctx, id)
		return err
	})
	if err != nil {
		if errors.Is(err, snapshot.ErrNotFound) {
			return fmt.Errorf("snapshot %s is gone from the store", id)
		}
		return fmt.Errorf("snapshot %s cannot be opened: %w", id, err)
	}
	return rc.Close()
}

// resumeRollback calls the host's Rollback if Apply had started, then
// restores the snapshot, unless each is already done.
func (r *run) resumeRollback(ctx context.Context, update Update) error {
	e := &r.journal.entry
	if !e.ApplyStarted {
		return nil
	}
	errs := multiError()
	if !e.done(PhaseRollback) {
		err := r.compensate(ctx, PhaseRollback, func(ctx context.Context) (string, error) {
			return "the host's Update.Rollback", guard("Update.Rollback", func() error { return update.Rollback(ctx) })
		})
		if r.handedOver {
			return nil
		}
		errs = multierror.Append(errs, err)
	}
	if r.handedOver {
		return flatten(errs)
	}
	if e.Snapshot != "" && !e.done(PhaseRestore) && r.o.snap != nil && !updateKeepsState(update) {
		m := snapshot.Manifest{ID: e.Snapshot}
		errs = multierror.Append(errs, r.compensate(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
			return "snapshot " + m.ID, guard("Snapshotter.Restore", func() error { return r.o.snap.Restore(ctx, m) })
		}))
	}
	return flatten(errs)
}

// resumeRestoreAfterUpdate restores, after a validated update, the state of
// the functions that ask for it.
func (r *run) resumeRestoreAfterUpdate(ctx context.Context) error {
	e := &r.journal.entry
	names := r.o.restoreAfterUpdate()
	if e.Snapshot == "" || e.done(PhaseRestore) || len(names) == 0 {
		return nil
	}
	m := snapshot.Manifest{ID: e.Snapshot}
	return r.compensate(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
		return fmt.Sprintf("%v from snapshot %s", names, m.ID), guard("Snapshotter.Restore", func() error { return r.o.snap.Restore(ctx, m, names...) })
	})
}

// resumeRestoreLost restores every source from the snapshot in a process
// that did not run the update: its own state is not the one the update
// protected. A restore the crashed process did went with it: this one
// runs even when the journal records one.
func (r *run) resumeRestoreLost(ctx context.Context) error {
	e := &r.journal.entry
	if e.Snapshot == "" || r.o.snap == nil {
		return nil
	}
	m := snapshot.Manifest{ID: e.Snapshot}
	r.report.Flags = append(r.report.Flags, fmt.Sprintf("this process did not run update %s: its critical state is restored from snapshot %s, the latest consistent state", e.Update, m.ID))
	return r.compensate(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
		return "snapshot " + m.ID + " (the process that ran the update is gone)", guard("Snapshotter.Restore", func() error { return r.o.snap.Restore(ctx, m) })
	})
}

// resumeCompensations ends degraded modes, undoes the device's allocation
// and brings migrated functions home, in the order an update unwinds.
func (r *run) resumeCompensations(ctx context.Context) error {
	e := &r.journal.entry
	o := r.o
	errs := multiError()
	if len(e.Degraded) > 0 && !e.done(PhaseRestoreService) {
		names := make([]string, len(e.Degraded))
		for i, d := range e.Degraded {
			names[i] = d.Function
		}
		errs = multierror.Append(errs, r.compensate(ctx, PhaseRestoreService, func(context.Context) (string, error) {
			return fmt.Sprintf("%v back to normal", names), o.clearDegraded(names, true)
		}))
	}
	if d := e.Device; d != nil && !e.done(PhaseUnpartition) {
		errs = multierror.Append(errs, r.compensate(ctx, PhaseUnpartition, func(ctx context.Context) (string, error) {
			switch {
			case !d.Journaled:
				r.report.Flags = append(r.report.Flags, fmt.Sprintf("device %s does not implement hal.Journaled: the allocation the interrupted update applied to it could not be undone by this process; check the device and reset it by hand", d.Type))
				return "not undone: the device cannot undo from a record", nil
			case d.Record == nil:
				return "nothing was applied", nil
			}
			jd := o.device.(journaledDevice) // checked by checkResumable
			return "undone from the journaled record", guard("device UndoRecord", func() error { return jd.UndoRecord(ctx, d.Record) })
		}))
	}
	if l := e.Lease; l != nil && !e.done(PhaseReturn) {
		errs = multierror.Append(errs, r.compensate(ctx, PhaseReturn, func(ctx context.Context) (string, error) {
			return fmt.Sprintf("lease %s (%v) returned", l.ID, l.Functions), o.reattachAndReturn(ctx, l.ID, l.Functions)
		}))
	}
	return flatten(errs)
}
