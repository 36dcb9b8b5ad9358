package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/updraft-dev/updraft/hal"
)

// Demand is one function's forecast need, as the profiler predicts it for
// the update window. Every quantity is in the unit of its [hal.Resource],
// and every resource must be one the capacity offers, except that a zero
// quantity of another resource is ignored.
//
// An allocation names the resources its demand names (in any of Expected,
// Peak or Min), and devices read a resource absent from a Limit as "not
// limited": name every resource a function uses, with a zero where it
// needs none.
type Demand struct {
	// Function names the function; names are unique within one Plan call.
	Function string
	// Critical functions are guaranteed Peak plus the margin, or the plan
	// fails with a [*ShortfallError].
	Critical bool
	// Expected is the typical use (forecast p50).
	Expected hal.Vector
	// Peak is the forecast p99. Critical functions are guaranteed
	// max(Peak, Expected) plus the margin; a non-critical function is never
	// given more than max(Peak, Expected, Min).
	Peak hal.Vector
	// Min is the least a non-critical function can do useful work with;
	// nil means Expected. A non-critical function that cannot be given at
	// least Min is listed in [Plan.DoesNotFit] and gets no allocation.
	Min hal.Vector
	// Weight is the function's share weight among non-critical functions;
	// 0 means 1. A function of weight 2 is filled twice as fast as one of
	// weight 1 (see the package documentation).
	Weight float64
}

// Partitioner plans how a device's capacity is shared among functions.
//
// Plan either returns a plan in which every critical function is
// guaranteed its peak plus a margin, or fails before anything changes;
// a plan only describes allocations, applying it is the job of a
// [hal.Device]. Implementations are safe for concurrent use.
type Partitioner interface {
	Plan(ctx context.Context, capacity hal.Vector, demands []Demand) (Plan, error)
}

// PartitionerFunc adapts a function to [Partitioner], for tests that want
// to inject a canned plan or a failure.
type PartitionerFunc func(ctx context.Context, capacity hal.Vector, demands []Demand) (Plan, error)

// Plan calls f.
func (f PartitionerFunc) Plan(ctx context.Context, capacity hal.Vector, demands []Demand) (Plan, error) {
	return f(ctx, capacity, demands)
}

// Plan is the outcome of [Partitioner.Plan].
//
// For every resource of the capacity, the guarantees of all allocations
// plus Reserve add up to the capacity: nothing is allocated twice and
// nothing is left unaccounted for.
type Plan struct {
	// Allocations holds one allocation per function that fits, sorted by
	// Function. Guarantee is the share reserved for the function; Limit is
	// what it may burst to: a critical function's Limit is its Guarantee
	// plus the whole Reserve, a non-critical function's Limit equals its
	// Guarantee. An allocation names the resources its demand names. On a
	// resource of [Options.Units], a critical function's Limit adds the
	// Reserve in whole steps (nothing, if the sum would be below the
	// unit's Min), so that a device enforcing its units accepts it.
	Allocations []hal.Allocation
	// Reserve is kept free for bursts and lent to critical functions as
	// burstable Limit headroom. It holds the configured reserve fraction of
	// the capacity (less, if critical guarantees need it) plus whatever the
	// non-critical functions could not use.
	Reserve hal.Vector
	// DoesNotFit lists the non-critical functions whose minimum could not
	// be given, ranked: the first is the best candidate to migrate or
	// degrade (the one furthest from fitting locally).
	DoesNotFit []Misfit

	// why writes the explanations; nil in a Plan not made by a Planner.
	why *explainer
}

// Explain says in words why function got what it got: a critical
// function's guarantee (peak plus margin) and how far it may burst, a
// non-critical function's fair share and what stopped the fill, or why a
// function does not fit and its rank among the candidates to migrate or
// degrade (its [Misfit.Reason] plus that rank). It returns "" for a
// function the plan does not know and for a Plan not made by a [Planner].
//
// The words are written on each call from what the plan keeps, not stored
// per function, so that planning 100 000 functions does not pay for
// 100 000 strings nobody reads. A Plan and its copies may be explained
// concurrently; the explanation does not change if a caller modifies the
// plan's vectors.
func (p Plan) Explain(function string) string {
	if p.why == nil {
		return ""
	}
	return p.why.explain(function)
}

// Allocation returns the allocation of function and whether it has one.
func (p Plan) Allocation(function string) (hal.Allocation, bool) {
	lo, hi := 0, len(p.Allocations)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if p.Allocations[mid].Function < function {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(p.Allocations) && p.Allocations[lo].Function == function {
		return p.Allocations[lo], true
	}
	return hal.Allocation{}, false
}

// Misfit is a non-critical function that gets no allocation because its
// minimum does not fit.
type Misfit struct {
	Function string
	// Need is the least the function needs (its Min, or Expected when Min
	// is nil, rounded up to the resource granularity), over the resources
	// it needs some of.
	Need hal.Vector
	// Reason says in words why it did not fit.
	Reason string
}

// ShortfallError is returned when critical functions cannot all be
// guaranteed their peak plus the margin. Nothing has been planned. Check
// with errors.As.
type ShortfallError struct {
	// Shortfall is, per resource, how much is missing.
	Shortfall hal.Vector
	// Functions are the critical functions that demand a short resource,
	// sorted.
	Functions []string
	// Need is what all critical functions together need, margin included,
	// each guarantee rounded up to its resource's unit.
	Need hal.Vector
	// Capacity is the capacity the plan was asked to fit in.
	Capacity hal.Vector

	// steps holds the step of each short resource planned in whole units.
	steps hal.Vector
}

// Error names each short resource and by how much it is short.
func (e *ShortfallError) Error() string {
	var b strings.Builder
	b.WriteString("partition: critical functions cannot all be guaranteed their peak plus margin: short of ")
	for i, r := range e.Shortfall.Resources() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s by %s (need %s, capacity %s)", r,
			hal.FormatQuantity(r, e.Shortfall[r]), hal.FormatQuantity(r, e.Need[r]), hal.FormatQuantity(r, e.Capacity[r]))
		if st := e.steps[r]; st > 0 {
			fmt.Fprintf(&b, " [%s is handed out in whole steps of %v: each critical guarantee was rounded up]", r, st)
		}
	}
	if len(e.Functions) > 0 {
		fmt.Fprintf(&b, "; critical functions involved: %s", strings.Join(e.Functions, ", "))
	}
	return b.String()
}

// ErrInvalidInput is wrapped by every error Plan and New return for bad
// input (an empty or duplicate function name, a negative, NaN or infinite
// quantity or weight, a resource the capacity does not offer, a bad
// option). Check with errors.Is; the message names the function, resource
// or field at fault.
var ErrInvalidInput = errors.New("partition: invalid input")

// Defaults used when the corresponding [Options] field is zero.
const (
	// DefaultMargin is the fraction added on top of a critical function's
	// forecast peak: 0.10 guarantees 110% of the p99.
	DefaultMargin = 0.10
	// DefaultReserve is the fraction of each resource kept free for bursts.
	DefaultReserve = 0.10
)

// NoMargin and NoReserve, set in [Options], turn the margin or the reserve
// off (a zero field means the default instead). Any negative value does
// the same.
const (
	NoMargin  = -1.0
	NoReserve = -1.0
)

// Options configures a [Planner]. The zero value is valid and means the
// documented defaults.
type Options struct {
	// Margin is the fraction added to each critical function's peak.
	// 0 means DefaultMargin; NoMargin (any negative value) means none.
	Margin float64
	// Reserve is the fraction of each resource's capacity kept free for
	// bursts and lent to critical functions. 0 means DefaultReserve;
	// NoReserve (any negative value) means none. It must be below 1.
	Reserve float64
	// Granularity gives, per resource, the unit that resource is planned
	// in: with {"nic.queue": 1} every queue guarantee is a whole number.
	// Critical guarantees are rounded up, non-critical ones down. A
	// resource absent from Granularity is continuous.
	Granularity hal.Vector
	// Units gives, per resource, how a device hands it out; for a driver
	// that implements [hal.Units], hal.UnitsOf(device). Guarantees of that
	// resource are whole multiples of Step and, when not zero, at least
	// Min. Critical guarantees round up (never below the demand plus the
	// margin; a [*ShortfallError] if that does not fit), non-critical ones
	// round down and to zero below Min, a non-critical function's minimum
	// rounds up, so it is never given less than it asked for. A resource
	// in both Units and Granularity must have the same step in both.
	Units map[hal.Resource]Unit
	// Logger receives a debug line per plan. nil discards.
	Logger *slog.Logger
	// Workers bounds how many goroutines one Plan call uses to load
	// demands and build allocations: 0 means GOMAXPROCS (at most 8), 1
	// keeps all work on the calling goroutine. A plan splits its work
	// only into chunks of at least 8192 functions, so small plans always
	// run on the calling goroutine. The plan does not depend on it.
	Workers int
}

// Unit is how a device hands out one resource: whole multiples of Step,
// never a non-zero amount below Min. It is [hal.Unit], so a driver's
// units ([hal.UnitsOf]) go into [Options.Units] as they are.
type Unit = hal.Unit

// Planner is the priority planner: critical functions first, then a
// weighted fair fill of what remains among non-critical functions (see
// the package documentation). Its zero value is not usable; call [New].
// A Planner is immutable (but for a pool of working buffers) and safe for
// concurrent use.
type Planner struct {
	margin      float64
	reserve     float64
	granularity hal.Vector
	unitMin     hal.Vector // Units' minimums, rounded up to the step
	units       map[hal.Resource]Unit
	log         *slog.Logger
	workers     int // Options.Workers
	// scratch pools *scratch buffers between Plan calls.
	scratch sync.Pool
}

var (
	_ Partitioner = (*Planner)(nil)
	_ Partitioner = PartitionerFunc(nil)
)

// New returns a Planner configured by opts, or an error wrapping
// [ErrInvalidInput] naming the bad field.
func New(opts Options) (*Planner, error) {
	p := &Planner{margin: opts.Margin, reserve: opts.Reserve, log: opts.Logger, workers: opts.Workers}
	if p.workers < 0 {
		return nil, fmt.Errorf("%w: Options.Workers is %d, must be >= 0 (0 means GOMAXPROCS)", ErrInvalidInput, p.workers)
	}
	switch {
	case math.IsNaN(p.margin) || math.IsInf(p.margin, 0):
		return nil, fmt.Errorf("%w: Options.Margin is %v", ErrInvalidInput, p.margin)
	case p.margin == 0:
		p.margin = DefaultMargin
	case p.margin < 0:
		p.margin = 0
	}
	switch {
	case math.IsNaN(p.reserve) || math.IsInf(p.reserve, 0):
		return nil, fmt.Errorf("%w: Options.Reserve is %v", ErrInvalidInput, p.reserve)
	case p.reserve >= 1:
		return nil, fmt.Errorf("%w: Options.Reserve %v must be below 1 (it is a fraction of capacity)", ErrInvalidInput, p.reserve)
	case p.reserve == 0:
		p.reserve = DefaultReserve
	case p.reserve < 0:
		p.reserve = 0
	}
	if err := opts.Granularity.Validate(); err != nil {
		return nil, fmt.Errorf("%w: Options.Granularity: %w", ErrInvalidInput, err)
	}
	for _, r := range opts.Granularity.Resources() {
		if opts.Granularity[r] == 0 {
			return nil, fmt.Errorf("%w: Options.Granularity resource %q: granularity must be positive", ErrInvalidInput, r)
		}
	}
	p.granularity = opts.Granularity.Clone()
	if p.granularity == nil {
		p.granularity = hal.Vector{}
	}
	p.unitMin = hal.Vector{}
	p.units = maps.Clone(opts.Units)
	for _, r := range slices.Sorted(maps.Keys(opts.Units)) {
		u := opts.Units[r]
		if err := u.Validate(); err != nil {
			return nil, fmt.Errorf("%w: Options.Units resource %q: %w", ErrInvalidInput, r, err)
		}
		if g, ok := opts.Granularity[r]; ok && u.Step != 0 && g != u.Step {
			return nil, fmt.Errorf("%w: Options.Units resource %q: Step %v differs from Options.Granularity %v", ErrInvalidInput, r, u.Step, g)
		}
		if u.Step > 0 {
			p.granularity[r] = u.Step
		}
		if u.Min > 0 {
			p.unitMin[r] = roundUp(u.Min, p.granularity[r])
		}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Margin returns the margin in force (after defaults).
func (p *Planner) Margin() float64 { return p.margin }

// Reserve returns the reserve fraction in force (after defaults).
func (p *Planner) Reserve() float64 { return p.reserve }
