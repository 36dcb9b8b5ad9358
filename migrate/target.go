package migrate

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// Target is somewhere a function can run for the update window: a FaaS
// endpoint in another region or cloud ([CloudEventsTarget]), or reserved
// capacity on this machine ([LocalTarget]).
//
// To write one: Call must apply a [KindInvoke] at most once per (Function,
// ID) and answer a repeated ID with the first answer; [KindPutState]
// replaces the function's state and remembers req.Generation;
// [KindGetState] returns a consistent export of it; an invoke or get whose
// non-empty Generation differs from the one remembered (the target lost its
// state) must fail with an error wrapping ErrRejected. A target whose Info
// says InProcess gets the function in req.Local, runs it at home, and is
// never sent state requests. Implementations are safe for concurrent use.
type Target interface {
	// Info describes the target for placement. It does not block.
	Info() TargetInfo
	// Probe checks the target is healthy and returns the round trip it
	// measured.
	Probe(ctx context.Context) (time.Duration, error)
	// Call delivers one request and returns the answer's payload. Errors
	// wrap ErrUnreachable (retry may help), ErrRejected (it will not),
	// ErrPayloadTooLarge, or are a *FunctionError.
	Call(ctx context.Context, req Request) ([]byte, error)
}

// TargetInfo is what placement knows about a target before probing it.
type TargetInfo struct {
	Name     string // unique among a Mover's targets
	Region   string // matched against Spec.Regions
	Provider string // for spreading across providers
	// Capacity is what the target can host, summed over the functions
	// placed on it (compared with Spec.Demand). Empty means unbounded.
	Capacity hal.Vector
	// CostPerMillion is the price of a million invocations, in the
	// operator's currency. Used by the CheapestFit policy.
	CostPerMillion float64
	// InProcess is true for targets that run functions in this process:
	// the function's state never leaves home.
	InProcess bool
}

// Kind says what a [Request] asks of a target.
type Kind uint8

// Request kinds. Each maps to a CloudEvents type (see [EventType]).
const (
	// KindInvoke runs the function with the payload.
	KindInvoke Kind = iota + 1
	// KindPutState replaces the function's state with the payload.
	KindPutState
	// KindGetState returns the function's state (a checkpoint).
	KindGetState
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindInvoke:
		return "invoke"
	case KindPutState:
		return "put-state"
	case KindGetState:
		return "get-state"
	default:
		return "unknown"
	}
}

// Request is one call to a target.
type Request struct {
	Kind     Kind
	Function string
	// ID is the idempotency key: a target that sees the same ID twice for
	// the same function applies it once and answers the second time with
	// the first answer.
	ID      string
	Payload []byte
	// Generation names the function's state as the lease installed it
	// (see ExtGeneration); empty for stateless functions. A target that
	// holds state of another generation refuses with ErrRejected.
	Generation string
	// NoAnswer and AnswerTypes are the spec's: an invocation is complete
	// on a bare acknowledgement when NoAnswer is set, and an answer event
	// may have one of AnswerTypes besides EventResult.
	NoAnswer    bool
	AnswerTypes []string
	// Local and State are the spec's; only in-process targets use them.
	Local Func
	State State
}
