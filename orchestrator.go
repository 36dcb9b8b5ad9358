package updraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// Window bounds. An update window is what forecasts cover and how long
// degraded modes last at most; one outside these bounds is a mistake in
// the caller's units rather than a plan.
const (
	// DefaultWindow is the update window used when Options.Window is zero.
	DefaultWindow = 5 * time.Minute
	// MinWindow is the shortest window New accepts.
	MinWindow = time.Second
	// MaxWindow is the longest window New accepts (the degrade package's
	// default ceiling on a degraded mode).
	MaxWindow = degrade.DefaultMaxWindow
)

// MarginalPolicy says what a marginal validation verdict leads to.
type MarginalPolicy int

const (
	// RollbackOnMarginal treats a marginal verdict as a failure (the default).
	RollbackOnMarginal MarginalPolicy = iota
	// ProceedOnMarginal commits the update and flags the report.
	ProceedOnMarginal
)

// Options configures an [Orchestrator]. Zero fields take the documented
// defaults; settings that contradict each other are refused by [New].
type Options struct {
	// Profiler forecasts demand and judges criticality. Nil means that no
	// function is measured: New then requires a static Demand on every
	// function, and criticality follows the annotations and dependencies.
	Profiler Profiler
	// Partitioner plans allocations. Nil means partition.New with its
	// defaults (margin and reserve as documented there) and the units the
	// device reports (hal.Units): a whole-unit device gets whole units.
	Partitioner Partitioner
	// Migrator moves functions that do not fit and have a Remote spec
	// ([Mover] adapts a *migrate.Mover). Nil means nothing moves:
	// functions that do not fit are degraded.
	Migrator Migrator
	// Store keeps snapshots, and the update journal when it implements
	// [JournalStore] (every store of package snapshot does). It must not
	// live on the resource being updated.
	Store snapshot.Store
	// Journal keeps the update journal; nil means Store. New refuses an
	// Orchestrator with neither: an update that cannot be resumed after a
	// crash could leave the machine half-changed.
	Journal JournalStore
	// Snapshotter takes the snapshots. Nil means a snapshot engine over
	// Store and the functions' State (sources named after the functions).
	// A host's Snapshotter must name its sources after the functions too:
	// RestoreAfterUpdate restores by function name.
	Snapshotter Snapshotter
	// SnapshotOptions configure the default snapshot engine (Snapshotter
	// nil); AppVersion, Clock and Logger left empty there are these
	// Options'. A host that serves on few cores sets CPUShare, so that
	// the snapshot the update takes while it serves is paced instead of
	// taking every core (examples/dataplane does). Setting both
	// Snapshotter and SnapshotOptions is refused.
	SnapshotOptions snapshot.Options
	// AppVersion is recorded in each snapshot's manifest.
	AppVersion string
	// Validator judges the updated data plane. Nil means validate.New over
	// Checks. Setting both Validator and Checks (or AllowNoChecks) is
	// refused.
	Validator Validator
	// Checks are the validation checks of the default validator.
	Checks []validate.Check
	// AllowNoChecks lets an update be committed with no validation evidence
	// at all. Without it, New refuses an empty Checks list.
	AllowNoChecks bool
	// Marginal says what a marginal verdict leads to; the zero value rolls back.
	Marginal MarginalPolicy
	// Degrader reduces functions during the window and admits their calls.
	// Nil means a new degrade.Controller, reachable through
	// [Orchestrator.Degrader]; a host that mounts the controller's HTTP
	// middleware usually builds it and passes it here.
	Degrader Degrader
	// AdaptiveDegrade makes every Throttle policy applied during the
	// window Adaptive (its MaxConcurrent, if any, the ceiling). While a
	// function the update reduced is under an Adaptive throttle, and the
	// Degrader is a *degrade.Controller, the Orchestrator runs the
	// controller's critical guard (RunGuard), fed with the latency of
	// Invoke calls of the functions judged critical; its back-offs are
	// flagged in the report.
	AdaptiveDegrade bool
	// Window is how long the update is expected to take; forecasts cover
	// it and degraded modes end by themselves when it is over. Zero means
	// DefaultWindow; otherwise it must be within [MinWindow, MaxWindow].
	Window time.Duration
	// OnEvent, when set, is called (synchronously, from the goroutine
	// running the update) when each phase starts and ends, for alerts, and
	// for the update's outcome. A panic in it fails the update like any
	// other host fault.
	OnEvent func(Event)
	// Holder names this process in the cross-process update lock, so that
	// another process refused the lock learns who holds it. Empty means
	// "pid N on HOSTNAME".
	Holder string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Orchestrator runs updates of one host application. Create it with [New].
// PrepareForUpdate and Resume run one at a time (in this process, and
// across processes sharing the journal); Invoke, Degrader and Functions
// are safe to call concurrently with them and with each other.
type Orchestrator struct {
	functions []Function
	byName    map[string]*Function
	device    hal.Device
	opts      Options
	journal   JournalStore
	snap      Snapshotter // nil when nothing has state
	validator Validator
	degrader  Degrader
	logger    *slog.Logger
	metrics   *metrics

	running atomic.Bool

	mu sync.RWMutex // guards lease, leaseID and moved
	// moving is held while functions migrate; Invoke of a function that
	// may move holds it for reading while it runs at home.
	moving  sync.RWMutex
	lease   Lease
	leaseID string
	moved   map[string]bool

	// current is the update PrepareForUpdate or Resume runs now; it is
	// read only by the goroutine running it (a SelfUpdate's Apply and
	// Rollback are called from there).
	current *run

	// hook, when set (by tests in this package), is called at named points
	// of an update; a crash test kills the process there.
	hook func(point string)
	// instance tells this Orchestrator's journals from another's (a new
	// process's, after a crash).
	instance string
}

// New checks the annotations and the options and returns an Orchestrator
// for functions on device (combine several devices with [hal.Combine]).
// Everything that can be checked before an update changes anything is
// checked here: bad annotations wrap [ErrInvalidFunctions], a missing
// required option [ErrMissingOption], a value out of range
// [ErrInvalidOption], settings that contradict each other
// [ErrConflictingOptions]; each error names the function or field at fault.
func New(functions []Function, device hal.Device, opts Options) (*Orchestrator, error) {
	fns := cloneFunctions(functions)
	if err := checkFunctions(fns); err != nil {
		return nil, err
	}
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	if err := checkOptions(&opts, fns); err != nil {
		return nil, err
	}
	o := &Orchestrator{functions: fns, byName: map[string]*Function{}, device: device, opts: opts, logger: opts.Logger, metrics: newMetrics(),
		instance: randomHex(8)}
	for i := range fns {
		o.byName[fns[i].Name] = &fns[i]
	}
	if err := o.buildCollaborators(); err != nil {
		return nil, err
	}
	return o, nil
}

// checkOptions fills the defaults of opts and refuses what cannot work.
func checkOptions(opts *Options, fns []Function) error {
	for name, v := range map[string]any{"Profiler": opts.Profiler, "Partitioner": opts.Partitioner, "Migrator": opts.Migrator,
		"Store": opts.Store, "Journal": opts.Journal, "Snapshotter": opts.Snapshotter, "Validator": opts.Validator, "Degrader": opts.Degrader} {
		if v == nil {
			continue
		}
		if mv, ok := v.(mover); ok && mv.m == nil {
			return fmt.Errorf("%w: Options.Migrator is updraft.Mover of a nil *migrate.Mover (did migrate.New fail?)", ErrInvalidOption)
		}
		if rv := reflect.ValueOf(v); isNilable(rv.Kind()) && rv.IsNil() {
			return fmt.Errorf("%w: Options.%s is a nil %T", ErrInvalidOption, name, v)
		}
	}
	switch {
	case opts.Window == 0:
		opts.Window = DefaultWindow
	case opts.Window < MinWindow || opts.Window > MaxWindow:
		return fmt.Errorf("%w: Options.Window %v is outside [%v, %v]", ErrInvalidOption, opts.Window, MinWindow, MaxWindow)
	}
	if opts.Marginal != RollbackOnMarginal && opts.Marginal != ProceedOnMarginal {
		return fmt.Errorf("%w: Options.Marginal %d is neither RollbackOnMarginal nor ProceedOnMarginal", ErrInvalidOption, opts.Marginal)
	}
	if opts.Snapshotter != nil && !reflect.ValueOf(opts.SnapshotOptions).IsZero() {
		return fmt.Errorf("%w: Options.Snapshotter is set, so Options.SnapshotOptions (for the default engine) would be ignored: set one or the other", ErrConflictingOptions)
	}
	if opts.Validator != nil && (len(opts.Checks) > 0 || opts.AllowNoChecks) {
		return fmt.Errorf("%w: Options.Validator is set, so Options.Checks and AllowNoChecks would be ignored: set one or the other", ErrConflictingOptions)
	}
	if opts.Validator == nil && len(opts.Checks) == 0 && !opts.AllowNoChecks {
		return fmt.Errorf("%w: no validation checks: an update is never called validated without evidence (set Options.Checks, or AllowNoChecks to opt out)", ErrMissingOption)
	}
	for _, f := range fns {
		if f.State != nil && opts.Store == nil && opts.Snapshotter == nil {
			return fmt.Errorf("%w: function %q has State but Options.Store is nil: snapshots need a store that is not on the resource being updated", ErrMissingOption, f.Name)
		}
		if opts.Profiler == nil && len(f.Demand) == 0 {
			return fmt.Errorf("%w: no Options.Profiler measures the functions and function %q has no static Demand: updraft cannot size what it cannot measure", ErrMissingOption, f.Name)
		}
	}
	if opts.Journal == nil {
		if j, ok := opts.Store.(JournalStore); ok {
			opts.Journal = j
		}
	}
	if opts.Journal == nil {
		return fmt.Errorf("%w: no journal: set Options.Store to a snapshot store (snapshot.NewFileStore, snapshot/etcdstore; snapshot.NewMemStore in tests) or Options.Journal; without one a crash during an update could leave the machine half-changed", ErrMissingOption)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("pid %d on %s", os.Getpid(), host)
	}
	return nil
}

// buildCollaborators makes the default of every collaborator the options
// leave out, each once and with the Orchestrator's clock and logger.
func (o *Orchestrator) buildCollaborators() error {
	opts := &o.opts
	o.logger = opts.Logger
	o.journal = opts.Journal
	if opts.Profiler == nil {
		a, err := profile.New(profile.Options{Clock: opts.Clock, Logger: opts.Logger})
		if err != nil {
			return fmt.Errorf("updraft: default profiler: %w", err)
		}
		opts.Profiler = a
	}
	if opts.Partitioner == nil {
		p, err := partition.New(partition.Options{Units: hal.UnitsOf(o.device)})
		if err != nil {
			return fmt.Errorf("updraft: default partitioner: %w", err)
		}
		opts.Partitioner = p
	}
	o.validator = opts.Validator
	if o.validator == nil {
		v, err := validate.New(opts.Checks, validate.Options{AllowNoChecks: opts.AllowNoChecks, Clock: opts.Clock, Logger: opts.Logger})
		if err != nil {
			return fmt.Errorf("updraft: validation: %w", err)
		}
		o.validator = v
		o.metrics.parts = append(o.metrics.parts, v.Collector())
	}
	o.degrader = opts.Degrader
	if o.degrader == nil {
		c, err := degrade.New(degrade.Options{Clock: opts.Clock, Logger: opts.Logger})
		if err != nil {
			return fmt.Errorf("updraft: default degrader: %w", err)
		}
		o.degrader = c
		o.metrics.parts = append(o.metrics.parts, c.Collector())
	}
	o.degrader = newGuardedDegrader(o, o.degrader)
	o.snap = opts.Snapshotter
	if o.snap == nil {
		sources := o.stateSources()
		if len(sources) > 0 {
			so := opts.SnapshotOptions
			if so.AppVersion == "" {
				so.AppVersion = opts.AppVersion
			}
			if so.Clock == nil {
				so.Clock = opts.Clock
			}
			if so.Logger == nil {
				so.Logger = opts.Logger
			}
			eng, err := snapshot.New(opts.Store, sources, so)
			if err != nil {
				return fmt.Errorf("updraft: snapshot engine: %w", err)
			}
			o.snap = eng
			o.metrics.parts = append(o.metrics.parts, eng.Collector())
		}
	}
	return nil
}

// stateSources returns every function's State by function name.
func (o *Orchestrator) stateSources() map[string]snapshot.Source {
	sources := map[string]snapshot.Source{}
	for _, f := range o.functions {
		if f.State != nil {
			sources[f.Name] = f.State
		}
	}
	return sources
}

func cloneFunctions(fns []Function) []Function {
	out := make([]Function, len(fns))
	copy(out, fns)
	for i := range out {
		out[i].DependsOn = append([]string(nil), out[i].DependsOn...)
		out[i].Demand = out[i].Demand.Clone()
		if fns[i].Min != nil {
			out[i].Min = fns[i].Min.Clone()
		}
		if len(fns[i].Demand) == 0 {
			out[i].Demand = nil
		}
		if fns[i].Degrade != nil {
			p := *fns[i].Degrade
			out[i].Degrade = &p
		}
		if fns[i].Remote != nil {
			r := *fns[i].Remote
			r.Regions = append([]string(nil), r.Regions...)
			out[i].Remote = &r
		}
	}
	return out
}

// Degrader returns the degrader the Orchestrator uses: Options.Degrader,
// or the *degrade.Controller it made when that was nil.
func (o *Orchestrator) Degrader() Degrader { return unwrapDegrader(o.degrader) }

// Functions returns the names of the functions, in declaration order.
func (o *Orchestrator) Functions() []string {
	names := make([]string, len(o.functions))
	for i, f := range o.functions {
		names[i] = f.Name
	}
	return names
}

// Invoke calls function with payload wherever it runs now: through its
// degraded mode's admission first, then remotely while it is migrated, or
// its local Func otherwise. A rejected call returns the degrade package's
// error (check with errors.Is against degrade.ErrDisabled and friends).
func (o *Orchestrator) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	f := o.byName[function]
	if f == nil {
		return nil, fmt.Errorf("updraft: invoke: unknown function %q", function)
	}
	release, err := o.degrader.Acquire(function)
	if err != nil {
		return nil, err
	}
	defer release()
	if f.Remote != nil {
		// A function that may move runs at home only while no migration
		// is exporting its state (see moving): an effect at home after
		// the export would be lost when the state comes back.
		o.moving.RLock()
		o.mu.RLock()
		lease, moved := o.lease, o.moved[function]
		o.mu.RUnlock()
		if moved {
			o.moving.RUnlock()
			return lease.Invoke(ctx, function, payload)
		}
		defer o.moving.RUnlock()
	}
	if f.Func == nil {
		return nil, fmt.Errorf("updraft: invoke: function %q has no Func", function)
	}
	return f.Func(ctx, payload)
}

func (o *Orchestrator) setLease(l Lease, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lease, o.leaseID = l, id
	o.moved = map[string]bool{}
	if l != nil {
		for _, p := range l.Placements() {
			o.moved[p.Function] = true
		}
	}
}

// holdsLease reports whether this process routes through lease id now.
func (o *Orchestrator) holdsLease(id string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.lease != nil && o.leaseID == id
}

// journaledLease returns the lease the running update journaled, if any.
func (o *Orchestrator) journaledLease() *leaseEntry {
	if o.current == nil || o.current.journal == nil {
		return nil
	}
	return o.current.journal.entry.Lease
}

// detachLease stops this process using its lease, leaving the functions
// where they are for another process to reattach (a self-update's switch).
func (o *Orchestrator) detachLease(ctx context.Context) (*leaseEntry, error) {
	o.mu.RLock()
	l, id := o.lease, o.leaseID
	o.mu.RUnlock()
	if l == nil {
		return nil, nil
	}
	d, ok := l.(interface{ Detach(context.Context) error })
	if !ok {
		return nil, fmt.Errorf("updraft: lease %s (%T) cannot be detached, so its functions cannot follow the data plane to a new process", id, l)
	}
	if err := guard("Lease.Detach", func() error { return d.Detach(ctx) }); err != nil {
		return nil, fmt.Errorf("updraft: detach lease %s: %w", id, err)
	}
	var names []string
	for _, p := range l.Placements() {
		names = append(names, p.Function)
	}
	o.setLease(nil, "")
	return &leaseEntry{ID: id, Functions: names}, nil
}

// reattachLease routes the functions of lease e through it in this process.
func (o *Orchestrator) reattachLease(ctx context.Context, e *leaseEntry) error {
	if o.opts.Migrator == nil {
		return fmt.Errorf("updraft: lease %s must be reattached but Options.Migrator is nil", e.ID)
	}
	var l Lease
	err := guard("Migrator.Reattach", func() (err error) {
		l, err = o.opts.Migrator.Reattach(ctx, e.ID, o.migrationSpecs(e.Functions, partition.Plan{}))
		return err
	})
	if errors.Is(err, migrate.ErrNotFound) {
		return nil // nothing of it remains: the functions are home
	}
	if err != nil {
		return fmt.Errorf("updraft: reattach lease %s: %w", e.ID, err)
	}
	o.setLease(l, e.ID)
	return nil
}

// at calls the test hook, if any, at a named point of an update.
func (o *Orchestrator) at(point string) {
	if o.hook != nil {
		o.hook(point)
	}
}

// capacity asks the device what it can give.
func (o *Orchestrator) capacity(ctx context.Context) (hal.Vector, error) {
	var v hal.Vector
	err := guard("device Capacity", func() (err error) {
		v, err = o.device.Capacity(ctx)
		return err
	})
	return v, err
}
