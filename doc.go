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
//  3. migrate: move the functions that do not fit and may run remotely;
//  4. snapshot: take a consistent cut of the critical state;
//  5. partition: enforce the plan on the devices (an Undo is kept);
//  6. degrade: throttle or disable what neither fits nor moved, and say so;
//  7. update: the host's Update.Apply;
//  8. validate: checks against the pre-update baseline;
//  9. commit (return migrated functions, undo the partition, leave degraded
//     mode) or roll back (Update.Rollback, restore the snapshot, the same
//     clean-up).
//
// Every step that changes something has a compensation; when a step fails,
// the compensations of the steps before it run in reverse order and every
// error is collected, none swallowed. The [Report] says what happened, phase
// by phase, with the decisions taken and why.
//
// Minimal wiring:
//
//	orch, err := updraft.New([]updraft.Function{
//		{Name: "forward", Criticality: updraft.Critical, State: routes},
//		{Name: "stats", Criticality: updraft.NonCritical, DependsOn: nil},
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
