package migrate

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// LocalOptions configure a [LocalTarget]. Zero fields take the documented
// defaults.
type LocalOptions struct {
	// Region is the target's region; default "local".
	Region string
	// Capacity is the capacity reserved for moved functions (for example
	// the cores a partition.Plan kept in reserve), compared with
	// Spec.Demand at placement. Empty means unbounded.
	Capacity hal.Vector
	// Slots bounds the invocations running at once, so moved functions
	// stay within the reserved cores; default runtime.GOMAXPROCS(0).
	Slots int
	// CostPerMillion is reported to the placement policy; default 0.
	CostPerMillion float64
}

// LocalTarget runs functions in this process, on reserved local capacity:
// at most Slots invocations at once. It is the target for when the same
// machine still has room (other cores, another NUMA node), and the
// in-memory Target tests and examples use. A function's state never leaves
// home on a LocalTarget.
//
// A LocalTarget is safe for concurrent use. [LocalTarget.SetDown] makes it
// fail like an unreachable region, for failover tests.
type LocalTarget struct {
	info  TargetInfo
	slots chan struct{}
	down  atomic.Bool
}

var _ Target = (*LocalTarget)(nil)

// NewLocalTarget returns a LocalTarget named name.
func NewLocalTarget(name string, opts LocalOptions) *LocalTarget {
	if opts.Region == "" {
		opts.Region = "local"
	}
	positiveOr(&opts.Slots, runtime.GOMAXPROCS(0))
	return &LocalTarget{
		info: TargetInfo{Name: name, Region: opts.Region, Provider: "local", Capacity: opts.Capacity.Clone(),
			CostPerMillion: opts.CostPerMillion, InProcess: true},
		slots: make(chan struct{}, opts.Slots),
	}
}

// Info implements [Target].
func (t *LocalTarget) Info() TargetInfo { return t.info }

// SetDown makes every later Probe and Call fail with ErrUnreachable (down
// true) or serve again (false).
func (t *LocalTarget) SetDown(down bool) { t.down.Store(down) }

// Probe implements [Target]; it measures nothing and reports zero latency.
func (t *LocalTarget) Probe(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("migrate: probe %s: %w", t.info.Name, err)
	}
	if t.down.Load() {
		return 0, fmt.Errorf("%w: local target %s is down", ErrUnreachable, t.info.Name)
	}
	return 0, nil
}

// Call implements [Target]: it runs req.Local in a free slot. State
// requests are refused: on an in-process target the state stays home.
func (t *LocalTarget) Call(ctx context.Context, req Request) ([]byte, error) {
	if t.down.Load() {
		return nil, fmt.Errorf("%w: local target %s is down", ErrUnreachable, t.info.Name)
	}
	if req.Kind != KindInvoke {
		return nil, fmt.Errorf("%w: local target %s: %s of %q: state stays home on an in-process target",
			ErrRejected, t.info.Name, req.Kind, req.Function)
	}
	if req.Local == nil {
		return nil, fmt.Errorf("%w: local target %s: function %q has no Local implementation", ErrRejected, t.info.Name, req.Function)
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("migrate: local target %s: waiting for a slot for %q: %w", t.info.Name, req.Function, ctx.Err())
	}
	defer func() { <-t.slots }()
	res, err := req.Local(ctx, req.Payload)
	if err != nil {
		return nil, &FunctionError{Function: req.Function, Target: t.info.Name, Message: err.Error(), Err: err}
	}
	return res, nil
}
