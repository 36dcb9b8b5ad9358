// Package updraft keeps a data-plane binary's critical functions serving
// while the data plane itself is updated.
//
// The host describes its functions once — which are critical, what they
// depend on, where their state lives, whether they may run elsewhere, and
// how they may be reduced — and hands updraft an [Update] it knows how to
// apply and roll back. [Orchestrator.PrepareForUpdate] then runs one whole
// update:
//
//  1. profile: forecast each function's demand over the update window and
//     judge which functions are critical (annotations win; Auto functions
//     are classified from evidence; dependencies of critical functions are
//     critical);
//  2. plan: partition the devices' capacity in favour of the critical
//     functions, keeping a reserve for bursts;
//  3. baseline: let the validator measure the data plane before anything
//     changes (validators that implement [BaselineRecorder]);
//  4. migrate: move the functions that do not fit and may run remotely;
//  5. snapshot: take a consistent cut of the critical state;
//  6. partition: enforce the plan on the device;
//  7. degrade: throttle or disable what neither fits nor moved, and say so;
//  8. update: the host's Update.Apply;
//  9. validate: checks against the pre-update baseline;
//  10. commit (return migrated functions, undo the partition, leave degraded
//     mode) or roll back (Update.Rollback, restore the snapshot, the same
//     clean-up).
//
// Every step that changes something has a compensation; when a step fails,
// the compensations of the steps before it run in reverse order and every
// error is collected, none swallowed. A panic in host code or a driver is
// recovered and compensated like a failure at that point ([PanicError]).
// The [Report] says what happened, phase by phase, with the decisions taken
// and why.
//
// # Crash safety
//
// Before a step changes anything, what undoes it is durable in a journal
// kept in the snapshot store (a file, or etcd): the lease that moved
// functions, the device's undo record (drivers that implement
// hal.Journaled), the degraded modes with their windows, the snapshot's
// id, whether Apply started and whether a passing validation was
// recorded. A process that starts after a crash calls
// [Orchestrator.Resume], which commits only an update whose passing
// validation was recorded and otherwise rolls it back, running only the
// compensations still owed. Until then PrepareForUpdate refuses with
// [ErrUnfinishedUpdate]; while an update runs, other processes sharing the
// store get [ErrUpdateInProgress] naming the holder.
//
// # Collaborators
//
// The Orchestrator uses each collaborator through a small interface
// declared in this package ([Profiler], [Partitioner], [Migrator] and
// [Lease], [Snapshotter], [Degrader], [Validator], and hal.Device), so a
// test can replace any of them in a few lines and a host links only what it
// uses. Options left nil get the packages' defaults.
//
// Minimal wiring (see the package example for a complete one):
//
//	orch, err := updraft.New([]updraft.Function{
//		{Name: "forward", Criticality: updraft.Critical, State: routes},
//		{Name: "stats", Criticality: updraft.NonCritical},
//	}, device, updraft.Options{Profiler: analyzer, Store: store, Checks: checks})
//	report, err := orch.PrepareForUpdate(ctx, updraft.UpdateFuncs{
//		ApplyFunc:    swapFirmware,
//		RollbackFunc: restoreFirmware,
//	})
//
// The packages behind each step (profile, partition, migrate, snapshot,
// degrade, validate, hal) are usable on their own; only this package
// imports them all.
package updraft
