package updraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

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

// run is the state of one update while PrepareForUpdate executes it. It is
// owned by that call's goroutine.
type run struct {
	o        *Orchestrator
	report   *Report
	undo     []compensation // in the order the steps ran
	forecast profile.Forecast
	plan     partition.Plan
	snap     snapshot.Snapshotter
	// manifest is set once the snapshot is taken.
	manifest *snapshot.Manifest
}

// PrepareForUpdate runs one whole update (see the package documentation for
// the phases) and returns its report. The error is nil only when the update
// was committed; otherwise it says why the update was abandoned or rolled
// back, and, when clean-up or rollback failed too, wraps every failure.
// The report is never nil and tells the same story phase by phase.
//
// Bad input (a nil update) is refused before anything changes. Only one
// update runs at a time; a second concurrent call gets ErrUpdateInProgress.
func (o *Orchestrator) PrepareForUpdate(ctx context.Context, update Update) (*Report, error) {
	r := &run{o: o, report: &Report{Started: o.opts.Clock(), Outcome: Aborted}}
	if update == nil {
		err := errors.New("updraft: nil update: pass an Update whose Apply and Rollback the host implements")
		r.report.Err = err
		return r.report, err
	}
	if !o.running.CompareAndSwap(false, true) {
		r.report.Err = ErrUpdateInProgress
		return r.report, ErrUpdateInProgress
	}
	defer o.running.Store(false)
	err := r.execute(ctx, update)
	r.report.Finished = o.opts.Clock()
	r.report.Err = err
	o.metrics.updates.WithLabelValues(string(r.report.Outcome)).Inc()
	return r.report, err
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
		return "", update.Apply(ctx)
	}); err != nil {
		return r.rollback(ctx, update, fmt.Errorf("updraft: update failed: %w", err))
	}

	if err := r.phase(ctx, PhaseValidate, r.validate); err != nil {
		return r.rollback(ctx, update, err)
	}
	if v := r.report.Validation; len(v.Results) == 0 {
		r.report.Flags = append(r.report.Flags, "no validation checks ran: committed without evidence because Options.AllowNoChecks is set")
	}
	if v := r.report.Validation; v.Verdict == validate.Marginal {
		r.report.Flags = append(r.report.Flags, "validation was marginal; committed by policy ProceedOnMarginal: "+oneLine(fmt.Sprint(verdictErr(*v))))
	}
	return r.commit(ctx)
}

// validate runs the validator; a fail verdict, or a marginal one under
// RollbackOnMarginal, is the phase's error.
func (r *run) validate(ctx context.Context) (string, error) {
	v, err := r.o.validator.Validate(ctx)
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

// phase runs one step, timing it and recording it in the report.
func (r *run) phase(ctx context.Context, p Phase, do func(context.Context) (string, error)) error {
	start := r.o.opts.Clock()
	r.o.emit(Event{Time: start, Level: slog.LevelInfo, Phase: p, Message: "phase started"})
	var (
		detail string
		err    = ctx.Err()
	)
	if err == nil {
		detail, err = do(ctx)
	}
	rec := PhaseRecord{Phase: p, Start: start, Duration: r.o.opts.Clock().Sub(start), Outcome: OK, Detail: detail, Err: err}
	if err != nil {
		rec.Outcome = Failed
		r.o.emit(Event{Time: r.o.opts.Clock(), Level: slog.LevelWarn, Phase: p, Message: "phase failed", Err: err})
	}
	r.report.Phases = append(r.report.Phases, rec)
	r.o.metrics.phases.WithLabelValues(string(p), string(rec.Outcome)).Observe(rec.Duration.Seconds())
	return err
}

// unwind runs every compensation in reverse order, recording each, and
// returns their errors collected. It uses a context that is not cancelled
// with the update's: clean-up must run even when the caller gave up.
func (r *run) unwind(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError()
	for i := len(r.undo) - 1; i >= 0; i-- {
		c := r.undo[i]
		if err := r.phase(ctx, c.phase, func(ctx context.Context) (string, error) { return "", c.run(ctx) }); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("updraft: %s: %w", c.phase, err))
		}
	}
	r.undo = nil
	err := flatten(errs)
	if err != nil {
		r.o.emit(Event{Time: r.o.opts.Clock(), Level: LevelAlert, Phase: PhaseCleanup,
			Message: "clean-up failed: some resources may still be partitioned, migrated or degraded", Err: err})
	}
	return err
}

// abandon gives up before the update ran: nothing but the compensations.
func (r *run) abandon(cause error) error {
	r.report.Outcome = Aborted
	return flatten(multiError(cause, r.unwind(context.Background())))
}

// rollback asks the host to roll back, restores the snapshot (even when the
// host's rollback failed: critical functions keep serving on known state),
// then runs the compensations.
func (r *run) rollback(ctx context.Context, update Update, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError(cause)
	r.report.Outcome = RolledBack
	if err := r.phase(ctx, PhaseRollback, func(ctx context.Context) (string, error) { return "", update.Rollback(ctx) }); err != nil {
		r.report.Outcome = RollbackFailed
		errs = multierror.Append(errs, fmt.Errorf("updraft: rollback failed: %w", err))
	}
	if r.manifest != nil {
		if err := r.phase(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
			return "snapshot " + r.manifest.ID, r.snap.Restore(ctx, *r.manifest)
		}); err != nil {
			r.report.Outcome = RollbackFailed
			errs = multierror.Append(errs, fmt.Errorf("updraft: restore snapshot: %w", err))
		}
	}
	if err := r.unwind(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	if r.report.Outcome == RollbackFailed {
		r.o.emit(Event{Time: r.o.opts.Clock(), Level: LevelAlert, Phase: PhaseRollback,
			Message: "rollback failed: critical functions serve on the restored state; the data plane needs attention", Err: errs})
	}
	return flatten(errs)
}

// commit restores the state of functions that asked for it, then runs the
// compensations: migrated functions come back, the partition is undone,
// degraded modes end.
func (r *run) commit(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	errs := multiError()
	if restore, n := r.restoreAfterUpdate(); n > 0 && r.manifest != nil {
		if err := r.phase(ctx, PhaseRestore, func(ctx context.Context) (string, error) {
			eng, err := snapshot.New(r.o.opts.Store, restore, snapshot.Options{AppVersion: r.o.opts.AppVersion})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d source(s) from snapshot %s", n, r.manifest.ID), eng.Restore(ctx, *r.manifest)
		}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("updraft: restore state after update: %w", err))
		}
	}
	if err := r.unwind(ctx); err != nil {
		errs = multierror.Append(errs, err)
	}
	r.report.Outcome = Committed
	return flatten(errs)
}

// restoreAfterUpdate returns the sources to restore after a committed
// update, and how many of them really restore: a snapshot is restored
// whole, so functions that did not ask for it get a source that verifies
// and discards their part.
func (r *run) restoreAfterUpdate() (map[string]snapshot.Source, int) {
	out := map[string]snapshot.Source{}
	n := 0
	for _, f := range r.o.functions {
		switch {
		case f.State == nil:
		case f.RestoreAfterUpdate:
			out[f.Name] = f.State
			n++
		default:
			out[f.Name] = discardSource{}
		}
	}
	return out, n
}

// discardSource reads its part of a snapshot and keeps nothing.
type discardSource struct{}

func (discardSource) Capture(context.Context) (snapshot.View, error) {
	return nil, errors.New("updraft: discardSource is only for restoring")
}

func (discardSource) Restore(_ context.Context, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// profile forecasts every function and records the criticality verdicts.
func (r *run) profile(ctx context.Context) (string, error) {
	fc, err := r.o.opts.Profiler.Forecast(ctx, r.o.opts.Window, profileFunctions(r.o.functions))
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
	capacity, err := r.o.device.Capacity(ctx)
	if err != nil {
		return "", fmt.Errorf("updraft: plan: device capacity: %w", err)
	}
	demands := make([]partition.Demand, 0, len(r.forecast.Functions))
	for _, ff := range r.forecast.Functions {
		f := r.o.byName[ff.Function]
		if ff.Critical {
			for _, res := range ff.P99.Resources() {
				if _, ok := capacity[res]; !ok && ff.P99[res] > 0 {
					return "", fmt.Errorf("updraft: plan: critical function %q needs resource %q, which no device provides (capacity: %v)", f.Name, res, capacity)
				}
			}
		}
		demands = append(demands, partition.Demand{Function: f.Name, Critical: ff.Critical, Expected: ff.P50, Peak: ff.P99, Min: f.Min, Weight: 1})
	}
	plan, err := r.o.opts.Partitioner.Plan(ctx, capacity, demands)
	if err != nil {
		return "", fmt.Errorf("updraft: plan: %w", err)
	}
	r.plan = plan
	r.report.Plan = &plan
	r.report.Capacity = capacity
	return fmt.Sprintf("%d allocated, %d do not fit, reserve %v", len(plan.Allocations), len(plan.DoesNotFit), plan.Reserve), nil
}

// recordBaseline lets baseline checks measure the data plane before anything changes.
func (r *run) recordBaseline(ctx context.Context) (string, error) {
	b, ok := r.o.validator.(validate.BaselineRecorder)
	if !ok {
		return "validator records no baseline", nil
	}
	if err := b.RecordBaseline(ctx); err != nil {
		return "", fmt.Errorf("updraft: baseline: %w", err)
	}
	return "recorded", nil
}

// migrate moves the functions that do not fit and may run remotely.
func (r *run) migrate(ctx context.Context) (string, error) {
	var specs []migrate.Spec
	for _, m := range r.plan.DoesNotFit {
		f := r.o.byName[m.Function]
		if f == nil || f.Remote == nil || r.o.opts.Migrator == nil {
			continue
		}
		specs = append(specs, migrate.Spec{Function: f.Name, Local: f.Func, State: f.Remote.State, Regions: f.Remote.Regions, Demand: m.Need})
	}
	if len(specs) == 0 {
		return "nothing to move", nil
	}
	lease, err := r.o.opts.Migrator.Migrate(ctx, specs)
	if err != nil {
		return "", fmt.Errorf("updraft: migrate: %w", err)
	}
	r.o.setLease(lease)
	r.undo = append(r.undo, compensation{PhaseReturn, func(ctx context.Context) error {
		if err := lease.Return(ctx); err != nil {
			return err
		}
		r.o.setLease(nil)
		return nil
	}})
	r.report.Placements = lease.Placements()
	return fmt.Sprintf("%d function(s) moved", len(r.report.Placements)), nil
}

// snapshot takes one consistent cut of every function's State.
func (r *run) snapshot(ctx context.Context) (string, error) {
	sources := map[string]snapshot.Source{}
	for _, f := range r.o.functions {
		if f.State != nil {
			sources[f.Name] = f.State
		}
	}
	if len(sources) == 0 {
		return "no state sources", nil
	}
	eng, err := snapshot.New(r.o.opts.Store, sources, snapshot.Options{AppVersion: r.o.opts.AppVersion, Clock: r.o.opts.Clock, Logger: r.o.opts.Logger})
	if err != nil {
		return "", fmt.Errorf("updraft: snapshot: %w", err)
	}
	m, err := eng.Snapshot(ctx)
	if err != nil {
		return "", fmt.Errorf("updraft: snapshot: %w", err)
	}
	r.snap, r.manifest = eng, &m
	r.report.SnapshotID = m.ID
	r.report.SnapshotPause = m.Pause
	return fmt.Sprintf("snapshot %s of %d source(s), pause %v", m.ID, len(sources), m.Pause), nil
}

// partition enforces the plan's allocations on the device.
func (r *run) partition(ctx context.Context) (string, error) {
	if len(r.plan.Allocations) == 0 {
		return "nothing to allocate", nil
	}
	undo, err := r.o.device.Apply(ctx, r.plan.Allocations)
	if err != nil {
		return "", fmt.Errorf("updraft: partition: %w", err)
	}
	r.undo = append(r.undo, compensation{PhaseUnpartition, undo})
	return fmt.Sprintf("%d allocation(s) applied", len(r.plan.Allocations)), nil
}

// degrade reduces every function that does not fit and did not move.
func (r *run) degrade(ctx context.Context) (string, error) {
	until := r.o.opts.Clock().Add(r.o.opts.Window)
	var set []string
	clear := func(ctx context.Context) error {
		errs := multiError()
		for _, fn := range set {
			errs = multierror.Append(errs, r.o.degrade.Clear(fn))
		}
		return flatten(errs)
	}
	for _, m := range r.plan.DoesNotFit {
		if r.moved(m.Function) {
			continue
		}
		policy := degrade.Policy{Mode: degrade.Disable}
		if f := r.o.byName[m.Function]; f != nil && f.Degrade != nil {
			policy = *f.Degrade
		}
		reason := "reduced while the data plane is updated: " + m.Reason
		if err := r.o.degrade.Set(m.Function, policy, reason, until); err != nil {
			return "", flatten(multiError(fmt.Errorf("updraft: degrade %q: %w", m.Function, err), clear(ctx)))
		}
		set = append(set, m.Function)
		r.report.Degraded = append(r.report.Degraded, DegradeDecision{Function: m.Function, Mode: policy.Mode, Reason: reason, Until: until})
	}
	if len(set) == 0 {
		return "nothing to reduce", nil
	}
	r.undo = append(r.undo, compensation{PhaseRestoreService, clear})
	return fmt.Sprintf("%d function(s) reduced until %s", len(set), until.Format("15:04:05")), nil
}

func (r *run) moved(function string) bool {
	for _, p := range r.report.Placements {
		if p.Function == function {
			return true
		}
	}
	return false
}

// multiError starts a collection of errors (nil ones are skipped) that
// prints on one line, "first; second".
func multiError(errs ...error) *multierror.Error {
	m := &multierror.Error{ErrorFormat: func(es []error) string {
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.Error()
		}
		return strings.Join(parts, "; ")
	}}
	return multierror.Append(m, errs...)
}

// flatten returns nil for no errors, the error itself for one, and the
// collection for several.
func flatten(m *multierror.Error) error {
	switch len(m.Errors) {
	case 0:
		return nil
	case 1:
		return m.Errors[0]
	}
	return m
}
