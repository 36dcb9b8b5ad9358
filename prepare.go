package updraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// compensation undoes one step that changed something.
type compensation struct {
	phase Phase
	run   func(ctx context.Context) error
}

// run is the state of one update while PrepareForUpdate or Resume executes
// it. It is owned by that call's goroutine.
type run struct {
	o       *Orchestrator
	report  *Report
	journal *journal
	// release gives up the update lock; releaseLock calls it at most once
	// (early, when a self-update hands the update to another process).
	release    func()
	handedOver bool           // another process finishes this update
	undo       []compensation // in the order the steps ran
	forecast   profile.Forecast
	plan       partition.Plan
	// manifest is set once the snapshot is taken.
	manifest *snapshot.Manifest
}

func (o *Orchestrator) newRun() *run {
	return &run{o: o, report: &Report{Started: o.opts.Clock(), Outcome: Aborted}}
}

// releaseLock gives up the update lock now, once.
func (r *run) releaseLock() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// keepsState is an optional interface of an Update whose rollback returns
// the critical state itself (a SelfUpdate takes it back from the new
// process): the Orchestrator then restores no snapshot.
type keepsState interface{ keptState() bool }

func updateKeepsState(u Update) bool {
	k, ok := u.(keepsState)
	return ok && k.keptState()
}

// handsOver is an optional interface of an Update after which another
// process carries the data plane (a SelfUpdate): a validated update is
// handed to it to finish.
type handsOver interface {
	handOver(ctx context.Context, r *run) (bool, error)
}

// PrepareForUpdate runs one whole update (see the package documentation for
// the phases) and returns its report. The error is nil only when the update
// was committed; otherwise it says why the update was abandoned or rolled
// back, and, when clean-up or rollback failed too, wraps every failure.
// The report is never nil and tells the same story phase by phase.
//
// Every change is written ahead to the journal, so a process that crashes
// during the update leaves what [Orchestrator.Resume] needs to finish it;
// until then, PrepareForUpdate refuses with [ErrUnfinishedUpdate]. A panic
// in host code or a driver is recovered, compensated like a failure at
// that point, and returned as a [*PanicError].
//
// Bad input (a nil update, an UpdateFuncs without ApplyFunc) is refused
// before anything changes, with [ErrInvalidUpdate]; an update without a
// rollback is flagged in the report before anything changes. Only one
// update runs at a time, across processes that share the journal; the
// others get [ErrUpdateInProgress] naming the holder.
func (o *Orchestrator) PrepareForUpdate(ctx context.Context, update Update) (*Report, error) {
	r := o.newRun()
	if err := r.checkUpdate(update); err != nil {
		return r.end(err)
	}
	release, err := o.acquire(ctx)
	if err != nil {
		return r.end(err)
	}
	r.release = release
	defer r.releaseLock()
	o.current = r
	defer func() { o.current = nil }()
	unfinished, err := readJournal(ctx, o.journal)
	if err != nil {
		return r.end(fmt.Errorf("%w (%w)", ErrUnfinishedUpdate, err))
	}
	if unfinished != nil {
		return r.end(fmt.Errorf("%w: update %s (started %s by %s, phase %s, heading %s) was not finished: call Orchestrator.Resume to finish it before a new update",
			ErrUnfinishedUpdate, unfinished.Update, unfinished.Started.Format("2006-01-02T15:04:05Z07:00"), unfinished.Holder, unfinished.Phase, unfinished.Heading))
	}
	now := o.opts.Clock()
	r.report.Update = newUpdateID(now)
	r.journal = &journal{store: o.journal, entry: journalEntry{
		Version: journalVersion, Update: r.report.Update, Holder: o.opts.Holder, Process: o.instance,
		Started: now, Until: now.Add(o.opts.Window), Phase: PhaseProfile, Heading: HeadingForward,
	}}
	if err := r.journal.write(ctx, func(*journalEntry) {}); err != nil {
		return r.end(err)
	}
	o.at("journal:started")
	return r.end(r.execute(ctx, update))
}

// checkUpdate refuses an update that cannot run, and flags one that cannot
// be rolled back, before anything changes.
func (r *run) checkUpdate(update Update) error {
	if update == nil {
		return fmt.Errorf("%w: nil update: pass an Update whose Apply and Rollback the host implements", ErrInvalidUpdate)
	}
	var funcs *UpdateFuncs
	switch u := update.(type) {
	case UpdateFuncs:
		funcs = &u
	case *UpdateFuncs:
		if u == nil {
			return fmt.Errorf("%w: nil *UpdateFuncs", ErrInvalidUpdate)
		}
		funcs = u
	}
	if funcs != nil && funcs.ApplyFunc == nil {
		return fmt.Errorf("%w: UpdateFuncs has no ApplyFunc: there is nothing to apply", ErrInvalidUpdate)
	}
	if funcs != nil && funcs.RollbackFunc == nil {
		r.report.Flags = append(r.report.Flags, "the update has no RollbackFunc: if it fails, the host's update cannot be rolled back (state is still restored from the snapshot)")
	}
	return nil
}

// end finishes the report, counts the outcome and tells the host.
func (r *run) end(err error) (*Report, error) {
	r.report.Finished = r.o.opts.Clock()
	r.report.Err = err
	if r.report.Resumed {
		label := string(r.report.Outcome)
		if err != nil && len(r.report.Phases) == 0 && r.report.Outcome != NothingToResume {
			label = "refused"
		}
		r.o.metrics.resumes.WithLabelValues(label).Inc()
	} else {
		r.o.metrics.updates.WithLabelValues(string(r.report.Outcome)).Inc()
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	if e := r.o.emit(Event{Time: r.report.Finished, Level: level, Phase: PhaseOutcome, Message: "update " + string(r.report.Outcome), Err: err}); e != nil {
		r.report.Flags = append(r.report.Flags, "the outcome event could not be delivered: "+oneLine(e.Error()))
	}
	return r.report, err
}

// acquire takes the in-process flag and the journal's cross-process lock.
func (o *Orchestrator) acquire(ctx context.Context) (release func(), err error) {
	if !o.running.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: in this process", ErrUpdateInProgress)
	}
	unlock := func(context.Context) error { return nil }
	if l, ok := o.journal.(Locker); ok {
		err := guard("Locker.Lock", func() (err error) {
			unlock, err = l.Lock(ctx, UpdateLock, o.opts.Holder)
			return err
		})
		if err != nil {
			o.running.Store(false)
			if errors.Is(err, snapshot.ErrLocked) {
				return nil, fmt.Errorf("%w: %w", ErrUpdateInProgress, err)
			}
			return nil, fmt.Errorf("updraft: update lock: %w", err)
		}
	}
	return func() {
		if err := guard("unlock", func() error { return unlock(context.WithoutCancel(ctx)) }); err != nil {
			o.logger.Warn("updraft: releasing the update lock failed", "err", err)
		}
		o.running.Store(false)
	}, nil
}

// execute runs the phases in order; a failure before the update runs the
// compensations and returns, a failure of the update or its validation
// rolls back.
func (r *run) execute(ctx context.Context, update Update) error {
	steps := []struct {
		phase Phase
		do    func(context.Context) (string, error)
	}{
		{PhaseProfile, r.profile},
		{PhasePlan, r.planResources},
		{PhaseBaseline, r.recordBaseline},
		{PhaseMigrate, r.migrate},
		{PhaseSnapshot, r.snapshot},
		{PhasePartition, r.partition},
		{PhaseDegrade, r.degrade},
	}
	for _, s := range steps {
		if err := r.phase(ctx, s.phase, s.do); err != nil {
			return r.abandon(err)
		}
	}

	if err := r.phase(ctx, PhaseUpdate, func(ctx context.Context) (string, error) {
		return "", r.apply(ctx, update)
	}); err != nil {
		return r.rollback(ctx, update, fmt.Errorf("updraft: update failed: %w", err))
	}

	if err := r.phase(ctx, PhaseValidate, r.validate); err != nil {
		if jerr := r.journal.write(ctx, func(e *journalEntry) { e.Heading = HeadingRollback }); jerr != nil {
			err = flatten(multiError(err, jerr))
		}
		return r.rollback(ctx, update, err)
	}
	if v := r.report.Validation; len(v.Results) == 0 {
		r.report.Flags = append(r.report.Flags, "no validation checks ran: committed without evidence because Options.AllowNoChecks is set")
	}
	if v := r.report.Validation; v.Verdict == validate.Marginal {
		r.report.Flags = append(r.report.Flags, "validation was marginal; committed by policy ProceedOnMarginal: "+oneLine(fmt.Sprint(verdictErr(*v))))
	}
	if h, ok := update.(handsOver); ok {
		handed, err := h.handOver(ctx, r)
		if handed {
			r.report.Outcome = Committed
			return nil
		}
		if err != nil {
			r.report.Flags = append(r.report.Flags, "the new process did not take the update over; this process finishes it: "+oneLine(err.Error()))
		}
	}
	return r.commit(ctx, updateKeepsState(update))
}

// apply journals that Apply starts, calls it, and journals that it ended.
func (r *run) apply(ctx context.Context, update Update) error {
	if err := r.journal.write(ctx, func(e *journalEntry) { e.Phase, e.ApplyStarted = PhaseUpdate, true }); err != nil {
		return err
	}
	r.o.at("update:apply")
	err := guard("Update.Apply", func() error { return update.Apply(ctx) })
	r.o.at("update:applied")
	if jerr := r.journal.write(ctx, func(e *journalEntry) { e.ApplyFinished = true }); jerr != nil {
		return flatten(multiError(err, jerr))
	}
	return err
}

// validate runs the validator; a fail verdict, or a marginal one under
// RollbackOnMarginal, is the phase's error. A passing verdict is journaled:
// from then on the update is heading for commit, even across a crash.
func (r *run) validate(ctx context.Context) (string, error) {
	var v validate.Report
	err := guard("Validator.Validate", func() (err error) {
		v, err = r.o.validator.Validate(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("updraft: validation could not run: %w", err)
	}
	r.report.Validation = &v
	detail := fmt.Sprintf("verdict %s, score %.2f, %d check(s)", v.Verdict, v.Score, len(v.Results))
	switch {
	case v.Verdict == validate.Fail:
		return detail, fmt.Errorf("updraft: validation failed: %w", verdictErr(v))
	case v.Verdict == validate.Marginal && r.o.opts.Marginal == RollbackOnMarginal:
		return detail, fmt.Errorf("updraft: validation marginal (policy RollbackOnMarginal): %w", verdictErr(v))
	}
	r.o.at("validate:passed")
	if err := r.journal.write(ctx, func(e *journalEntry) { e.Phase, e.Validated, e.Heading = PhaseValidate, true, HeadingCommit }); err != nil {
		return detail, err
	}
	r.o.at("validate:journaled")
	return detail, nil
}

// verdictErr lists, on one line, each check that did not pass; it wraps
// the checks' own errors so callers can still match them.
func verdictErr(v validate.Report) error {
	errs := multiError()
	for _, res := range v.Results {
		if res.Verdict == validate.Pass {
			continue
		}
		switch {
		case res.Err != nil:
			errs = multierror.Append(errs, fmt.Errorf("check %q %s: %w", res.Check, res.Verdict, res.Err))
		default:
			errs = multierror.Append(errs, fmt.Errorf("check %q %s: %s", res.Check, res.Verdict, strings.Join(res.Evidence, ", ")))
		}
	}
	return flatten(errs)
}

// phase runs one step, timing it, recording it in the report and telling
// the host when it starts and ends. A panic in the step, or in the host's
// event hook, is the step's error.
func (r *run) phase(ctx context.Context, p Phase, do func(context.Context) (string, error)) error {
	start := r.o.opts.Clock()
	r.o.at(string(p) + ":start")
	err := r.o.emit(Event{Time: start, Level: slog.LevelInfo, Phase: p, Message: "phase started"})
	if err == nil {
		err = ctx.Err()
	}
	var detail string
	if err == nil {
		err = guard(string(p)+" phase", func() (err error) {
			detail, err = do(ctx)
			return err
		})
	}
	rec := PhaseRecord{Phase: p, Start: start, Duration: r.o.opts.Clock().Sub(start), Outcome: OK, Detail: detail, Err: err}
	if errors.Is(err, ErrHandedOver) {
		// Not a failure: another process carries on from here.
		rec.Err, rec.Detail = nil, "handed over: "+err.Error()
		r.report.Phases = append(r.report.Phases, rec)
		return err
	}
	if err == nil {
		if eerr := r.o.emit(Event{Time: r.o.opts.Clock(), Level: slog.LevelInfo, Phase: p, Message: "phase ended: " + detail}); eerr != nil {
			err, rec.Err = eerr, eerr
		}
	}
	if err != nil {
		rec.Outcome = Failed
		if eerr := r.o.emit(Event{Time: r.o.opts.Clock(), Level: slog.LevelWarn, Phase: p, Message: "phase failed", Err: err}); eerr != nil {
			r.o.logger.Warn("updraft: the event hook panicked while reporting a failure", "phase", string(p), "err", eerr)
		}
	}
	r.report.Phases = append(r.report.Phases, rec)
	r.o.metrics.phases.WithLabelValues(string(p), string(rec.Outcome)).Observe(rec.Duration.Seconds())
	return err
}

// compensate runs one compensation as a phase and journals it done.
func (r *run) compensate(ctx context.Context, p Phase, do func(context.Context) (string, error)) error {
	if err := r.phase(ctx, p, do); err != nil {
		return fmt.Errorf("updraft: %s: %w", p, err)
	}
	if err := r.journal.markDone(ctx, p); err != nil {
		return err
	}
	r.o.at(string(p) + ":done")
	return nil
}

// unwind runs every compensation in reverse order, recording each, and
// returns their errors collected. It uses a context that is not cancelled
// with the update's: clean-up must run even when the caller gave up.
func (r *run) unwind(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError()
	for i := len(r.undo) - 1; i >= 0; i-- {
		c := r.undo[i]
		errs = multierror.Append(errs, r.compensate(ctx, c.phase, func(ctx context.Context) (string, error) { return "", c.run(ctx) }))
	}
	r.undo = nil
	return flatten(errs)
}

// settle ends an update whose steps have all run: when no compensation
// failed, the journal is deleted and nothing is owed; otherwise the journal
// stays for Resume and an alert says so.
func (r *run) settle(ctx context.Context, errs *multierror.Error) error {
	ctx = context.WithoutCancel(ctx)
	if !r.owesCompensation() {
		if err := r.journal.finish(ctx); err != nil {
			errs = multierror.Append(errs, err)
		}
		return flatten(errs)
	}
	r.report.Flags = append(r.report.Flags, fmt.Sprintf("update %s is not finished: its journal stays, and Orchestrator.Resume finishes what is owed", r.report.Update))
	if eerr := r.o.emit(Event{Time: r.o.opts.Clock(), Level: LevelAlert, Phase: PhaseCleanup,
		Message: "clean-up did not finish: some resources may still be partitioned, migrated or degraded; Resume finishes it", Err: flatten(errs)}); eerr != nil {
		errs = multierror.Append(errs, eerr)
	}
	return flatten(errs)
}

// owesCompensation reports whether a compensation or roll-back step failed.
func (r *run) owesCompensation() bool {
	for _, p := range r.report.Phases {
		if p.Outcome == Failed && p.Phase.compensates() {
			return true
		}
	}
	return false
}

// abandon gives up before the update ran: nothing but the compensations.
func (r *run) abandon(cause error) error {
	r.report.Outcome = Aborted
	errs := multiError(cause)
	if err := r.unwind(context.Background()); err != nil {
		errs = multierror.Append(errs, err)
	}
	return r.settle(context.Background(), errs)
}

// rollback asks the host to roll back, restores the snapshot (even when the
// host's rollback failed: critical functions keep serving on known state),
// then runs the compensations.
func (r *run) rollback(ctx context.Context, update Update, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError(cause)
	r.report.Outcome = RolledBack
	if err := r.compensate(ctx, PhaseRollback, func(ctx context.Context) (string, error) {
		return "", guard("Update.Rollback", func() error { return update.Rollback(ctx) })
	}); err != nil {
		r.report.Outcome = RollbackFailed
		errs = multierror.Append(errs, err)
	}
	if r.manifest != nil && !updateKeepsState(update) {
		if err := r.compensate(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
			return "snapshot " + r.manifest.ID, r.o.snap.Restore(ctx, *r.manifest)
		}); err != nil {
			r.report.Outcome = RollbackFailed
			errs = multierror.Append(errs, err)
		}
	}
	if err := r.unwind(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	if r.report.Outcome == RollbackFailed {
		if eerr := r.o.emit(Event{Time: r.o.opts.Clock(), Level: LevelAlert, Phase: PhaseRollback,
			Message: "rollback failed: critical functions serve on the restored state; the data plane needs attention", Err: flatten(errs)}); eerr != nil {
			errs = multierror.Append(errs, eerr)
		}
	}
	return r.settle(ctx, errs)
}

// commit restores the state of functions that asked for it (unless the
// update carried the state itself), then runs the compensations: migrated functions come back, the partition is undone,
// degraded modes end.
func (r *run) commit(ctx context.Context, keptState bool) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError()
	if names := r.o.restoreAfterUpdate(); len(names) > 0 && r.manifest != nil && !keptState {
		if err := r.compensate(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
			return fmt.Sprintf("%s from snapshot %s", strings.Join(names, ", "), r.manifest.ID), r.o.snap.Restore(ctx, *r.manifest, names...)
		}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("updraft: restore state after update: %w", err))
		}
	}
	if err := r.unwind(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	r.report.Outcome = Committed
	return r.settle(ctx, errs)
}

// restoreAfterUpdate names the functions whose state is restored after a
// committed update.
func (o *Orchestrator) restoreAfterUpdate() []string {
	var names []string
	for _, f := range o.functions {
		if f.State != nil && f.RestoreAfterUpdate {
			names = append(names, f.Name)
		}
	}
	return names
}

// profile forecasts every function and records the criticality verdicts.
func (r *run) profile(ctx context.Context) (string, error) {
	var fc profile.Forecast
	err := guard("Profiler.Forecast", func() (err error) {
		fc, err = r.o.opts.Profiler.Forecast(ctx, r.o.opts.Window, profileFunctions(r.o.functions))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("updraft: profile: %w", err)
	}
	byName := map[string]profile.FunctionForecast{}
	for _, ff := range fc.Functions {
		byName[ff.Function] = ff
	}
	critical := 0
	for _, f := range r.o.functions {
		ff, ok := byName[f.Name]
		if !ok {
			return "", fmt.Errorf("updraft: profile: the profiler returned no forecast for function %q", f.Name)
		}
		if ff.Samples == 0 {
			if len(f.Demand) == 0 && ff.Critical {
				return "", fmt.Errorf("updraft: profile: critical function %q has no samples and no static Demand: updraft cannot size its guarantee (measure it or annotate Demand)", f.Name)
			}
			ff.P50, ff.P95, ff.P99 = f.Demand.Clone(), f.Demand.Clone(), f.Demand.Clone()
			ff.Reasons = append(slices.Clone(ff.Reasons), "no samples: sized from the host's static Demand")
		}
		byName[f.Name] = ff
		if ff.Critical {
			critical++
		}
		r.report.Functions = append(r.report.Functions, FunctionDecision{
			Function: f.Name, Critical: ff.Critical, Reasons: ff.Reasons, Forecast: ff.P99, Confidence: ff.Confidence,
		})
	}
	r.forecast = fc
	r.forecast.Functions = make([]profile.FunctionForecast, 0, len(r.o.functions))
	for _, f := range r.o.functions {
		r.forecast.Functions = append(r.forecast.Functions, byName[f.Name])
	}
	return fmt.Sprintf("%d functions, %d critical, window %v", len(r.o.functions), critical, r.o.opts.Window), nil
}

// planResources asks the partitioner for a plan over the device capacity.
func (r *run) planResources(ctx context.Context) (string, error) {
	capVec, err := r.o.capacity(ctx)
	if err != nil {
		return "", fmt.Errorf("updraft: plan: device capacity: %w", err)
	}
	demands := make([]partition.Demand, 0, len(r.forecast.Functions))
	for _, ff := range r.forecast.Functions {
		f := r.o.byName[ff.Function]
		if ff.Critical {
			for _, res := range ff.P99.Resources() {
				if _, ok := capVec[res]; !ok && ff.P99[res] > 0 {
					return "", fmt.Errorf("updraft: plan: critical function %q needs resource %q, which no device provides (capacity: %v)", f.Name, res, capVec)
				}
			}
		}
		demands = append(demands, partition.Demand{Function: f.Name, Critical: ff.Critical, Expected: ff.P50, Peak: ff.P99, Min: f.Min, Weight: 1})
	}
	var plan partition.Plan
	err = guard("Partitioner.Plan", func() (err error) {
		plan, err = r.o.opts.Partitioner.Plan(ctx, capVec, demands)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("updraft: plan: %w", err)
	}
	r.plan = plan
	r.report.Plan = &plan
	r.report.Capacity = capVec
	return fmt.Sprintf("%d allocated, %d do not fit, reserve %v", len(plan.Allocations), len(plan.DoesNotFit), plan.Reserve), nil
}

// recordBaseline lets baseline checks measure the data plane before anything changes.
func (r *run) recordBaseline(ctx context.Context) (string, error) {
	b, ok := r.o.validator.(BaselineRecorder)
	if !ok {
		return "validator records no baseline", nil
	}
	if err := guard("BaselineRecorder.RecordBaseline", func() error { return b.RecordBaseline(ctx) }); err != nil {
		return "", fmt.Errorf("updraft: baseline: %w", err)
	}
	return "recorded", nil
}

// migrate moves the functions that do not fit and may run remotely. The
// lease's id and functions are journaled before anything moves.
func (r *run) migrate(ctx context.Context) (string, error) {
	var names []string
	for _, m := range r.plan.DoesNotFit {
		if f := r.o.byName[m.Function]; f != nil && f.Remote != nil && r.o.opts.Migrator != nil {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return "nothing to move", nil
	}
	specs := r.o.migrationSpecs(names, r.plan)
	id := "lease-" + r.report.Update
	if err := r.journal.write(ctx, func(e *journalEntry) {
		e.Phase, e.Lease = PhaseMigrate, &leaseEntry{ID: id, Functions: names}
	}); err != nil {
		return "", err
	}
	r.o.at("migrate:journaled")
	var lease Lease
	// Invocations of movable functions wait while they move: those at
	// home finish before the state is exported, later ones go through the
	// lease.
	r.o.moving.Lock()
	err := guard("Migrator.Migrate", func() (err error) {
		lease, err = r.o.opts.Migrator.Migrate(ctx, id, specs)
		return err
	})
	if err == nil {
		r.o.setLease(lease, id)
	}
	r.o.moving.Unlock()
	if err != nil {
		// A migrator undoes a migration that failed; one that panicked
		// may not have, so what remains of the lease is found and returned.
		var pe *PanicError
		if errors.As(err, &pe) {
			r.undo = append(r.undo, compensation{PhaseReturn, func(ctx context.Context) error {
				return r.o.reattachAndReturn(ctx, id, names)
			}})
		}
		return "", fmt.Errorf("updraft: migrate: %w", err)
	}
	r.undo = append(r.undo, compensation{PhaseReturn, func(ctx context.Context) error {
		return r.o.reattachAndReturn(ctx, id, names)
	}})
	r.report.Placements = lease.Placements()
	return fmt.Sprintf("%d function(s) moved", len(r.report.Placements)), nil
}

// migrationSpecs builds the specs of the named functions; the plan, when
// it has them, gives their demand.
func (o *Orchestrator) migrationSpecs(names []string, plan partition.Plan) []migrate.Spec {
	specs := make([]migrate.Spec, 0, len(names))
	for _, name := range names {
		f := o.byName[name]
		spec := migrate.Spec{Function: f.Name, Local: f.Func, State: f.Remote.State, Regions: f.Remote.Regions}
		for _, m := range plan.DoesNotFit {
			if m.Function == name {
				spec.Demand = m.Need
			}
		}
		specs = append(specs, spec)
	}
	return specs
}

// reattachAndReturn brings lease id home: the one this process routes
// through, or the one it finds again (after a crash, or a hand-over); a
// lease of which nothing remains is already home.
func (o *Orchestrator) reattachAndReturn(ctx context.Context, id string, names []string) error {
	if !o.holdsLease(id) {
		if err := o.reattachLease(ctx, &leaseEntry{ID: id, Functions: names}); err != nil {
			return err
		}
		if !o.holdsLease(id) {
			return nil // nothing of it remained
		}
	}
	o.mu.RLock()
	lease := o.lease
	o.mu.RUnlock()
	if err := guard("Lease.Return", func() error { return lease.Return(ctx) }); err != nil {
		return err
	}
	o.setLease(nil, "")
	return nil
}

// snapshot takes one consistent cut of every function's State and journals
// its id.
func (r *run) snapshot(ctx context.Context) (string, error) {
	if r.o.snap == nil {
		return "no state sources", nil
	}
	var m snapshot.Manifest
	if err := guard("Snapshotter.Snapshot", func() (err error) {
		m, err = r.o.snap.Snapshot(ctx)
		return err
	}); err != nil {
		return "", fmt.Errorf("updraft: snapshot: %w", err)
	}
	r.o.at("snapshot:taken")
	r.manifest = &m
	r.report.SnapshotID = m.ID
	r.report.SnapshotPause = m.Pause
	if err := r.journal.write(ctx, func(e *journalEntry) { e.Phase, e.Snapshot = PhaseSnapshot, m.ID }); err != nil {
		return "", err
	}
	r.o.at("snapshot:journaled")
	return fmt.Sprintf("snapshot %s of %d source(s), pause %v", m.ID, len(m.Sources), m.Pause), nil
}

// partition enforces the plan's allocations on the device. A device that
// can be undone from a record journals that record before it changes
// anything; the Apply of one that cannot is journaled as owed.
func (r *run) partition(ctx context.Context) (string, error) {
	if len(r.plan.Allocations) == 0 {
		return "nothing to allocate", nil
	}
	dev := r.o.device
	jd, journaled := dev.(journaledDevice)
	entry := &deviceEntry{Journaled: journaled, Type: fmt.Sprintf("%T", dev)}
	if err := r.journal.write(ctx, func(e *journalEntry) { e.Phase, e.Device = PhasePartition, entry }); err != nil {
		return "", err
	}
	r.o.at("partition:journaled")
	var undo func(context.Context) error
	err := guard("device Apply", func() error {
		if !journaled {
			u, err := dev.Apply(ctx, r.plan.Allocations)
			undo = u
			return err
		}
		u, err := jd.ApplyJournaled(ctx, r.plan.Allocations, func(record []byte) error {
			rec := &deviceEntry{Journaled: true, Type: entry.Type, Record: append([]byte(nil), record...)}
			if err := r.journal.write(ctx, func(e *journalEntry) { e.Device = rec }); err != nil {
				return err
			}
			r.o.at("partition:record")
			return nil
		})
		undo = u
		return err
	})
	if err != nil {
		// A driver that fails midway undoes what it did; one that panicked
		// may not have: undo from the journaled record.
		var pe *PanicError
		if errors.As(err, &pe) && journaled && r.journal.entry.Device.Record != nil {
			rec := r.journal.entry.Device.Record
			r.undo = append(r.undo, compensation{PhaseUnpartition, func(ctx context.Context) error {
				return guard("device UndoRecord", func() error { return jd.UndoRecord(ctx, rec) })
			}})
		}
		return "", fmt.Errorf("updraft: partition: %w", err)
	}
	r.undo = append(r.undo, compensation{PhaseUnpartition, func(ctx context.Context) error {
		return guard("device Undo", func() error { return undo(ctx) })
	}})
	r.o.at("partition:applied")
	return fmt.Sprintf("%d allocation(s) applied", len(r.plan.Allocations)), nil
}

// degrade reduces every function that does not fit and did not move. The
// modes are journaled with their window before they are set.
func (r *run) degrade(ctx context.Context) (string, error) {
	until := r.o.opts.Clock().Add(r.o.opts.Window)
	type decision struct {
		fn     string
		policy degrade.Policy
		reason string
	}
	var todo []decision
	for _, m := range r.plan.DoesNotFit {
		if r.moved(m.Function) {
			continue
		}
		policy := degrade.Policy{Mode: degrade.Disable}
		if f := r.o.byName[m.Function]; f != nil && f.Degrade != nil {
			policy = *f.Degrade
		}
		todo = append(todo, decision{m.Function, policy, "reduced while the data plane is updated: " + m.Reason})
	}
	if len(todo) == 0 {
		return "nothing to reduce", nil
	}
	entries := make([]degradedEntry, len(todo))
	for i, d := range todo {
		entries[i] = degradedEntry{Function: d.fn, Mode: d.policy.Mode, Until: until}
	}
	if err := r.journal.write(ctx, func(e *journalEntry) { e.Phase, e.Degraded = PhaseDegrade, entries }); err != nil {
		return "", err
	}
	r.o.at("degrade:journaled")
	var set []string
	clear := func(ctx context.Context) error { return r.o.clearDegraded(set, false) }
	for _, d := range todo {
		if err := guard("Degrader.Set", func() error { return r.o.degrader.Set(d.fn, d.policy, d.reason, until) }); err != nil {
			return "", flatten(multiError(fmt.Errorf("updraft: degrade %q: %w", d.fn, err), clear(ctx)))
		}
		set = append(set, d.fn)
		r.report.Degraded = append(r.report.Degraded, DegradeDecision{Function: d.fn, Mode: d.policy.Mode, Reason: d.reason, Until: until})
	}
	r.undo = append(r.undo, compensation{PhaseRestoreService, clear})
	r.o.at("degrade:set")
	return fmt.Sprintf("%d function(s) reduced until %s", len(set), until.Format("15:04:05")), nil
}

// clearDegraded returns the named functions to normal service. After a
// crash (resumed), this process's degrader may never have reduced them:
// they are set to Normal, which is no error for a function never reduced.
func (o *Orchestrator) clearDegraded(functions []string, resumed bool) error {
	errs := multiError()
	for _, fn := range functions {
		errs = multierror.Append(errs, guard("Degrader", func() error {
			if resumed {
				return o.degrader.Set(fn, degrade.Policy{Mode: degrade.Normal}, "", time.Time{})
			}
			return o.degrader.Clear(fn)
		}))
	}
	return flatten(errs)
}

func (r *run) moved(function string) bool {
	for _, p := range r.report.Placements {
		if p.Function == function {
			return true
		}
	}
	return false
}
