package updraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// DefaultWindow is the update window forecast for when Options.Window is zero.
const DefaultWindow = 5 * time.Minute

// MarginalPolicy says what a marginal validation verdict leads to.
type MarginalPolicy int

const (
	// RollbackOnMarginal treats a marginal verdict as a failure (the default).
	RollbackOnMarginal MarginalPolicy = iota
	// ProceedOnMarginal commits the update and flags the report.
	ProceedOnMarginal
)

// Options configures an [Orchestrator]. Zero fields take the documented
// defaults.
type Options struct {
	// Profiler forecasts demand and judges criticality. Nil means an
	// analyzer with no collectors, so every critical function must then
	// carry a static Demand.
	Profiler profile.Profiler
	// Partitioner plans allocations. Nil means partition.New with its
	// defaults (margin and reserve as documented there).
	Partitioner partition.Partitioner
	// Migrator moves functions that do not fit and have a Remote spec. Nil
	// means nothing moves: functions that do not fit are degraded.
	Migrator migrate.Migrator
	// Store keeps snapshots; it must not live on the resource being
	// updated. Required when any function has State.
	Store snapshot.Store
	// AppVersion is recorded in each snapshot's manifest.
	AppVersion string
	// Validator judges the updated data plane. Nil means validate.New over
	// Checks.
	Validator validate.Validator
	// Checks are the validation checks used when Validator is nil.
	Checks []validate.Check
	// AllowNoChecks lets an update be committed with no validation evidence
	// at all. Without it, New refuses an empty Checks list.
	AllowNoChecks bool
	// Marginal says what a marginal verdict leads to; the zero value rolls back.
	Marginal MarginalPolicy
	// Degrade is the controller that reduces functions during the window.
	// Nil means a new controller; either way [Orchestrator.Degrade] returns
	// it, so the host can mount its middleware and status handler.
	Degrade *degrade.Controller
	// Window is how long the update is expected to take; forecasts cover
	// it and degraded modes end by themselves when it is over. Zero means
	// DefaultWindow.
	Window time.Duration
	// OnEvent, when set, is called (synchronously, from the goroutine
	// running the update) for every phase change and alert.
	OnEvent func(Event)
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// ErrUpdateInProgress is returned by PrepareForUpdate while another update
// runs on the same Orchestrator.
var ErrUpdateInProgress = errors.New("updraft: an update is already in progress")

// Orchestrator runs updates of one host application. Create it with [New].
// PrepareForUpdate runs one update at a time; Invoke, Degrade and Functions
// are safe to call concurrently with it and with each other.
type Orchestrator struct {
	functions []Function
	byName    map[string]*Function
	device    hal.Device
	opts      Options
	validator validate.Validator
	degrade   *degrade.Controller
	logger    *slog.Logger
	metrics   *metrics

	running atomic.Bool

	mu    sync.RWMutex // guards lease and moved
	lease *migrate.Lease
	moved map[string]bool
}

// New checks the annotations and the options and returns an Orchestrator
// for functions on device (combine several devices with [hal.Combine]).
// Bad annotations — an empty or duplicate name, an unknown dependency, a
// dependency cycle, a Remote spec without a Func — and missing required
// options give an error naming the culprit; nothing is changed.
func New(functions []Function, device hal.Device, opts Options) (*Orchestrator, error) {
	fns := cloneFunctions(functions)
	if err := checkFunctions(fns); err != nil {
		return nil, err
	}
	if device == nil {
		return nil, errors.New("updraft: no device: pass a hal.Device (hal/sim for tests, hal/linux for cgroups)")
	}
	o := &Orchestrator{functions: fns, byName: map[string]*Function{}, device: device, opts: opts, logger: opts.Logger, metrics: newMetrics()}
	for i := range fns {
		o.byName[fns[i].Name] = &fns[i]
		if fns[i].State != nil && opts.Store == nil {
			return nil, fmt.Errorf("updraft: function %q has State but Options.Store is nil: snapshots need a store that is not on the resource being updated", fns[i].Name)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.opts.Window == 0 {
		o.opts.Window = DefaultWindow
	}
	if o.opts.Window < 0 {
		return nil, fmt.Errorf("updraft: Options.Window %v is negative", o.opts.Window)
	}
	if o.opts.Clock == nil {
		o.opts.Clock = time.Now
	}
	if o.opts.Profiler == nil {
		a, err := profile.New(profile.Options{Clock: o.opts.Clock, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("updraft: default profiler: %w", err)
		}
		o.opts.Profiler = a
	}
	if o.opts.Partitioner == nil {
		p, err := partition.New(partition.Options{})
		if err != nil {
			return nil, fmt.Errorf("updraft: default partitioner: %w", err)
		}
		o.opts.Partitioner = p
	}
	o.validator = opts.Validator
	if o.validator == nil && len(opts.Checks) == 0 && !opts.AllowNoChecks {
		return nil, errors.New("updraft: no validation checks: an update is never called validated without evidence (set Options.Checks, or AllowNoChecks to opt out)")
	}
	if o.validator == nil {
		v, err := validate.New(opts.Checks, validate.Options{AllowNoChecks: opts.AllowNoChecks, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("updraft: validation: %w", err)
		}
		o.validator = v
	}
	o.degrade = opts.Degrade
	if o.degrade == nil {
		o.degrade = degrade.New(degrade.Options{Clock: o.opts.Clock, Logger: opts.Logger})
	}
	return o, nil
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
	}
	return out
}

// Degrade returns the degradation controller, for the host's HTTP
// middleware, status handler and subscriptions.
func (o *Orchestrator) Degrade() *degrade.Controller { return o.degrade }

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
	release, err := o.degrade.Acquire(function)
	if err != nil {
		return nil, err
	}
	defer release()
	o.mu.RLock()
	lease, moved := o.lease, o.moved[function]
	o.mu.RUnlock()
	if moved {
		return lease.Invoke(ctx, function, payload)
	}
	if f.Func == nil {
		return nil, fmt.Errorf("updraft: invoke: function %q has no Func", function)
	}
	return f.Func(ctx, payload)
}

func (o *Orchestrator) setLease(l *migrate.Lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lease = l
	o.moved = map[string]bool{}
	if l != nil {
		for _, p := range l.Placements() {
			o.moved[p.Function] = true
		}
	}
}
