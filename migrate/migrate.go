package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// Func is a function that can run locally or in a remote region. It takes
// an opaque payload and returns an opaque result; the same Func can be
// registered with a [Handler] in the remote region and used as
// [Spec.Local] at home.
type Func func(ctx context.Context, payload []byte) ([]byte, error)

// State moves a function's state with it. Export writes a complete,
// self-contained copy of the state; Import replaces the state with one read
// from r. A [Handler] never calls Export or Import while an invocation of
// the same function runs, so implementations only need to guard against
// their own other users.
type State interface {
	Export(ctx context.Context, w io.Writer) error
	Import(ctx context.Context, r io.Reader) error
}

// Spec describes one function to move.
type Spec struct {
	// Function names the function; it is also the name it is registered
	// under in the remote [Handler]. Required, unique within one Migrate;
	// 1 to 256 printable ASCII characters without spaces.
	Function string
	// Local is the local implementation: what runs after Return, what a
	// local target runs, and the degraded fallback when no target is left.
	// Required.
	Local Func
	// State, when set, travels with the function: exported before the
	// move, checkpointed while away, imported back on Return.
	State State
	// Regions is the data-residency allow-list: the function may only be
	// placed on targets whose region is listed. Empty means any region.
	Regions []string
	// Demand is what the function needs on the target (optional). A
	// target that declares a capacity only receives functions whose
	// demands, summed, fit within it.
	Demand hal.Vector
	// NoAnswer declares that the function's callers need no answer (its
	// effect is all that matters). A target's acknowledgement — HTTP 202,
	// or any 2xx without an event — then completes an invocation, and
	// Invoke returns a nil result. Only such functions may be placed on
	// targets that acknowledge without answering (see [ProbeAnswerer]).
	NoAnswer bool
	// AnswerTypes lists CloudEvents types, besides [EventResult], that a
	// target's answer to an invocation may have: a plain receiver that
	// replies with events of its own type. The answer's data is the
	// result. A target whose probe is answered with an event of another
	// type is not chosen for a function that needs an answer.
	AnswerTypes []string
}

// Validate returns an error naming the function and field at fault.
func (s Spec) Validate() error {
	if s.Function == "" {
		return errors.New("migrate: spec has no function name")
	}
	if err := checkName(s.Function); err != nil {
		return err
	}
	if s.Local == nil {
		return fmt.Errorf("migrate: function %q: spec has no Local implementation", s.Function)
	}
	for i, r := range s.Regions {
		if r == "" {
			return fmt.Errorf("migrate: function %q: Regions[%d] is empty", s.Function, i)
		}
	}
	for i, t := range s.AnswerTypes {
		if t == "" || t == EventError {
			return fmt.Errorf("migrate: function %q: AnswerTypes[%d] is %q (want a non-empty type other than %s)", s.Function, i, t, EventError)
		}
	}
	if err := s.Demand.Validate(); err != nil {
		return fmt.Errorf("migrate: function %q demand: %w", s.Function, err)
	}
	return nil
}

// Migrator moves functions to targets and hands back a [Lease] that routes
// their invocations until [Lease.Return].
//
// If Migrate fails, it has already returned everything it moved: no
// function is left placed remotely and the returned lease is nil.
type Migrator interface {
	Migrate(ctx context.Context, id string, specs []Spec) (*Lease, error)
	Reattach(ctx context.Context, id string, specs []Spec) (*Lease, error)
}

// checkName accepts function names that travel unchanged in a CloudEvents
// subject header: 1 to 256 printable ASCII characters, no spaces.
func checkName(name string) error {
	if len(name) > 256 {
		return fmt.Errorf("migrate: function name %.20q... is %d bytes, limit 256", name, len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("migrate: function name %q: byte %d (%#x) is not printable ASCII", name, i, c)
		}
	}
	return nil
}

// Placement records where one function went and why.
type Placement struct {
	Function string // the function moved
	Target   string // the target's name
	Region   string // the target's region
	Provider string // the target's provider ("local" for in-process targets)
	Reason   string // why this target was chosen, in a sentence a human reads
}

// String formats p on one line.
func (p Placement) String() string {
	return fmt.Sprintf("%s -> %s (region %s, provider %s): %s", p.Function, p.Target, p.Region, p.Provider, p.Reason)
}

// Errors callers branch on; check them with errors.Is.
var (
	// ErrUnknownFunction: the function is not part of the lease, or not
	// registered with the handler.
	ErrUnknownFunction = errors.New("migrate: unknown function")
	// ErrNoTarget: no healthy target in an allowed region has room for
	// the function.
	ErrNoTarget = errors.New("migrate: no suitable target")
	// ErrPayloadTooLarge: a payload or state exceeds the configured limit.
	ErrPayloadTooLarge = errors.New("migrate: payload too large")
	// ErrBufferFull: the on-disk buffer of a function is at its bound; the
	// invocation was refused (and counted), not queued.
	ErrBufferFull = errors.New("migrate: invocation buffer full")
	// ErrUnreachable: the target could not be reached or answered with a
	// server error; the call may be retried.
	ErrUnreachable = errors.New("migrate: target unreachable")
	// ErrRejected: the target answered, but refused the request (bad
	// signature, unknown function, wrong event type, garbage). Retrying on
	// the same target does not help.
	ErrRejected = errors.New("migrate: target rejected request")
	// ErrUnauthorized: a request was unsigned, tampered with, or outside
	// the time window. It wraps into ErrRejected on the calling side.
	ErrUnauthorized = errors.New("migrate: unauthorized")
	// ErrStateMismatch: a handler holds state of another generation than
	// the request expects (it restarted, or the state was replaced). It
	// wraps into ErrRejected on the calling side.
	ErrStateMismatch = errors.New("migrate: state generation mismatch")
	// ErrNoAnswer: the target accepted an invocation (HTTP 2xx) but gave
	// no usable answer (no event, or one of a type the function did not
	// declare). The invocation counts as applied: it is neither retried
	// nor run elsewhere or at home, so its effect happens once.
	ErrNoAnswer = errors.New("migrate: target accepted the invocation without a usable answer")
)

// ProbeAnswerer is an optional interface of a [Target] that knows how it
// answers invocations: placement uses it to keep functions off targets
// that cannot give them what they need (see [Spec.NoAnswer]).
// [CloudEventsTarget] implements it; a Target without it is taken to
// follow the whole [Target] contract.
type ProbeAnswerer interface {
	// ProbeAnswer reports what the target declared and how its last
	// successful probe was answered.
	ProbeAnswer() ProbeAnswer
}

// InFlightLimiter is implemented by a [Target] that takes only so many
// invocations of one function at once: a lease sends it no more than the
// smaller of MaxInFlight (when positive) and Options.MaxInFlight.
// [CloudEventsTarget] implements it (CloudEventsOptions.MaxInFlight).
type InFlightLimiter interface {
	MaxInFlight() int
}

// ProbeAnswer is how a target answers (see [ProbeAnswerer]).
type ProbeAnswer struct {
	// AcknowledgeOnly: the target was declared to acknowledge
	// invocations (HTTP 202, or 2xx without an event) and never answer.
	AcknowledgeOnly bool
	// RepliesLater: answers acknowledged invocations later, at an
	// address the lease serves (CloudEventsOptions.ReplyTo).
	RepliesLater bool
	// Type is the type of the event the last probe was answered with;
	// "" for a bare acknowledgement. A [Handler] answers with EventResult.
	Type string
	// Status is the probe's HTTP status.
	Status int
}

// FunctionError is the error a function itself returned, locally or in a
// remote region. Its effect counts as applied: it is not retried.
type FunctionError struct {
	Function string
	Target   string // where it ran
	Message  string
	Err      error // the original error when the function ran in-process
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("migrate: function %q on %s: %s", e.Function, e.Target, e.Message)
}

// Unwrap returns the original error of an in-process run, else nil.
func (e *FunctionError) Unwrap() error { return e.Err }

// Clock returns the current time; tests inject a fixed or skewed one.
type Clock func() time.Time

// positiveOr sets *v to def unless it is positive: how options take their
// defaults.
func positiveOr[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
