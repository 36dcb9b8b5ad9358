package hal

import (
	"context"
	"errors"
	"fmt"
)

// Allocation is what a device is asked to give one function.
//
// Guarantee is the share the function is promised (CPU weight and quota
// floor, memory protection); Limit is the most it may use, including any
// burst headroom borrowed from the reserve. A resource absent from Limit is
// not limited. Limit must be at least Guarantee for every resource both name.
type Allocation struct {
	Function  string
	Guarantee Vector
	Limit     Vector
}

// Validate returns an error naming the function and resource at fault.
func (a Allocation) Validate() error {
	if a.Function == "" {
		return errors.New("hal: allocation has no function name")
	}
	if err := a.Guarantee.Validate(); err != nil {
		return fmt.Errorf("hal: function %q guarantee: %w", a.Function, err)
	}
	if err := a.Limit.Validate(); err != nil {
		return fmt.Errorf("hal: function %q limit: %w", a.Function, err)
	}
	for _, r := range a.Guarantee.Resources() {
		if l, ok := a.Limit[r]; ok && l < a.Guarantee[r] {
			return fmt.Errorf("hal: function %q resource %q: limit %s is below guarantee %s",
				a.Function, r, FormatQuantity(r, l), FormatQuantity(r, a.Guarantee[r]))
		}
	}
	return nil
}

// Undo reverses one [Device.Apply]: it restores every value the Apply
// changed to what it was before. Implementations are idempotent: once a
// call has succeeded, later calls do nothing and return nil; after a failed
// call, a later one retries (see [Once]).
type Undo func(ctx context.Context) error

// Device is a piece of data-plane hardware whose resources updraft can
// partition: the host's CPUs and memory, an offload card, a switch ASIC.
//
// Implementations are safe for concurrent use.
type Device interface {
	// Capacity returns what the device can give, per resource.
	Capacity(ctx context.Context) (Vector, error)
	// Apply enforces allocs, replacing any previous allocation of the same
	// functions. It either applies all of them or, on error, none: a driver
	// that fails midway undoes what it had done before returning. The
	// returned Undo restores the state before this call.
	Apply(ctx context.Context, allocs []Allocation) (Undo, error)
}

// Journaled is an optional interface of a [Device] (in the manner of
// database/sql/driver's optional interfaces) whose Apply can be undone by
// another process: the undo outlives the process that applied. updraft
// journals the record durably before the device changes anything, so that
// after a crash a new process opening the same device can undo from it.
// A device without it can only be undone by the process that applied;
// after a crash updraft reports exactly what it could not undo.
type Journaled interface {
	Device
	// ApplyJournaled is Apply, but before it changes anything it calls
	// journal with a record from which UndoRecord can restore the state
	// before this call, in this process or a new one. It may call journal
	// again with a fuller record as it goes (each call replaces the one
	// before); it never changes anything the last journaled record does
	// not cover. If journal fails, ApplyJournaled changes nothing and
	// returns that error.
	ApplyJournaled(ctx context.Context, allocs []Allocation, journal func(record []byte) error) (Undo, error)
	// UndoRecord restores the state a record describes. It is idempotent:
	// running it twice, after the Undo that ApplyJournaled returned, or
	// again after a crash in the middle of it, is safe. A record the
	// device cannot read is refused with an error naming what is wrong.
	UndoRecord(ctx context.Context, record []byte) error
}

// Meter is implemented by devices that can measure what a function uses now.
type Meter interface {
	// Usage returns function's current usage per resource.
	Usage(ctx context.Context, function string) (Vector, error)
}

// ErrUnknownFunction is returned (wrapped) by devices asked about a function
// they have no binding for. Check with errors.Is.
var ErrUnknownFunction = errors.New("hal: unknown function")

// ErrUnknownResource is returned (wrapped) by [Combine]'s Apply for an
// allocation naming a resource none of its devices offers. Check with
// errors.Is.
var ErrUnknownResource = errors.New("hal: no device offers the resource")

// NopUndo is an Undo that does nothing.
func NopUndo(context.Context) error { return nil }
