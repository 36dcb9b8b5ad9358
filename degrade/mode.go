package degrade

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Mode is how much of a function is served. The zero value is [Normal].
type Mode int

// The modes a function can be in, from full service to none.
const (
	// Normal admits every request.
	Normal Mode = iota
	// Throttle admits requests up to a rate and/or a concurrency limit and
	// rejects the rest with [ErrThrottled] (HTTP 429).
	Throttle
	// Disable rejects every request with [ErrDisabled] (HTTP 503).
	Disable
	// Shed drops a share of requests with [ErrShed] (HTTP 503). Every
	// priority's share is fixed by ShedFraction, lower priorities at a
	// higher share (see [Priority]): low and normal requests are dropped
	// together, not strictly lowest first, so that Shed needs no knowledge
	// of the traffic's mix.
	Shed
)

var modeNames = [...]string{Normal: "normal", Throttle: "throttle", Disable: "disable", Shed: "shed"}

// String returns the mode's lower-case name ("normal", "throttle", "disable",
// "shed"), or "mode(N)" for a value outside the defined modes.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// valid reports whether m is one of the defined modes.
func (m Mode) valid() bool { return m >= Normal && m <= Shed }

// MarshalText encodes the mode by name, so JSON status shows "throttle"
// rather than 1.
func (m Mode) MarshalText() ([]byte, error) {
	if !m.valid() {
		return nil, fmt.Errorf("degrade: cannot encode %s: %w", m, ErrInvalidPolicy)
	}
	return []byte(m.String()), nil
}

// UnmarshalText decodes a mode name as written by [Mode.MarshalText]
// (case-insensitive).
func (m *Mode) UnmarshalText(text []byte) error {
	mode, err := ParseMode(string(text))
	if err != nil {
		return err
	}
	*m = mode
	return nil
}

// ParseMode returns the mode named s ("normal", "throttle", "disable" or
// "shed", case-insensitive). Other input yields an error wrapping
// [ErrInvalidPolicy].
func ParseMode(s string) (Mode, error) {
	for i, name := range modeNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return Mode(i), nil
		}
	}
	return Normal, fmt.Errorf("degrade: unknown mode %q (want normal, throttle, disable or shed): %w", s, ErrInvalidPolicy)
}

// Priority ranks requests of one function for [Shed]: lower priorities are
// dropped at a higher share (low at twice normal's, high only once
// ShedFraction exceeds 0.5). [Controller.Acquire] uses [PriorityNormal];
// [Controller.AcquirePriority] takes an explicit one.
type Priority int8

// The request priorities understood by [Shed].
const (
	// PriorityLow requests are dropped at twice the policy's ShedFraction
	// (all of them once ShedFraction reaches 0.5).
	PriorityLow Priority = -1
	// PriorityNormal requests are dropped at the policy's ShedFraction.
	PriorityNormal Priority = 0
	// PriorityHigh requests are dropped only once ShedFraction exceeds 0.5,
	// at 2*ShedFraction-1, so they go last.
	PriorityHigh Priority = 1
)

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	switch {
	case p < 0:
		return "low"
	case p > 0:
		return "high"
	default:
		return "normal"
	}
}

// ParsePriority maps "low", "normal" or "high" (case-insensitive; "" means
// normal) to a Priority.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return PriorityLow, nil
	case "", "normal":
		return PriorityNormal, nil
	case "high":
		return PriorityHigh, nil
	}
	return PriorityNormal, fmt.Errorf("degrade: unknown priority %q (want low, normal or high): %w", s, ErrInvalidPolicy)
}

// shedShare is the share of requests of priority p dropped when a policy
// sheds fraction f of normal-priority traffic.
func shedShare(f float64, p Priority) float64 {
	switch {
	case p < 0:
		return math.Min(1, 2*f)
	case p > 0:
		return math.Max(0, 2*f-1)
	default:
		return f
	}
}

// The bounds [Policy.Validate] puts on a rate limit, so that every accepted
// rate is enforced as written: the interval between admissions, in
// nanoseconds, and that interval times Burst must fit in an int64.
const (
	// MinRatePerSecond is the smallest non-zero RatePerSecond: one request
	// per 10^6 seconds (about 11.6 days).
	MinRatePerSecond = 1e-6
	// MaxRatePerSecond is the largest RatePerSecond: one request per
	// nanosecond, the clock's resolution.
	MaxRatePerSecond = 1e9
	// MaxBurst is the largest Burst.
	MaxBurst = 1 << 20
)

// Policy says how a function is reduced. Which fields matter depends on
// Mode; fields that do not apply to the mode must be zero, so a policy
// reads as what it does.
type Policy struct {
	// Mode is the reduction; see the Mode constants.
	Mode Mode `json:"mode"`
	// RatePerSecond is, for Throttle, the number of requests admitted per
	// second on average: 0 (no rate limit) or within [MinRatePerSecond,
	// MaxRatePerSecond].
	RatePerSecond float64 `json:"ratePerSecond,omitempty"`
	// Burst is, for Throttle with a rate, how many requests may be admitted
	// at once after a quiet spell (0 = 1; at most MaxBurst).
	Burst int `json:"burst,omitempty"`
	// MaxConcurrent is, for Throttle, how many requests may be in flight at
	// once (0 = no fixed limit). With Adaptive it is the ceiling the
	// adaptive limit never exceeds.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// Adaptive makes a Throttle's concurrency limit follow the function's
	// latency and the machine's pressure (see [AdaptiveOptions]), scaled by
	// the critical guard (see [GuardOptions]), which may close it (limit 0)
	// while the critical path is over its bounds.
	Adaptive bool `json:"adaptive,omitempty"`
	// ShedFraction is, for Shed, the share of normal-priority requests
	// dropped, in (0, 1]. Low-priority requests are dropped at twice that
	// share, high-priority ones at 2*ShedFraction-1; see [Priority].
	ShedFraction float64 `json:"shedFraction,omitempty"`
}

// Validate reports what is wrong with p, as an error wrapping
// [ErrInvalidPolicy] that names the field at fault, or nil.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("degrade: policy: "+format+": %w", append(args, ErrInvalidPolicy)...)
	}
	if !p.Mode.valid() {
		return bad("unknown mode %d", int(p.Mode))
	}
	if math.IsNaN(p.RatePerSecond) || math.IsInf(p.RatePerSecond, 0) || p.RatePerSecond < 0 {
		return bad("RatePerSecond %v must be a finite number >= 0", p.RatePerSecond)
	}
	if p.RatePerSecond != 0 && (p.RatePerSecond < MinRatePerSecond || p.RatePerSecond > MaxRatePerSecond) {
		return bad("RatePerSecond %v must be 0 (no rate limit) or within [%g, %g]", p.RatePerSecond, MinRatePerSecond, MaxRatePerSecond)
	}
	if p.Burst < 0 || p.Burst > MaxBurst {
		return bad("Burst %d must be within [0, %d]", p.Burst, MaxBurst)
	}
	if p.MaxConcurrent < 0 {
		return bad("MaxConcurrent %d must be >= 0", p.MaxConcurrent)
	}
	if math.IsNaN(p.ShedFraction) || p.ShedFraction < 0 || p.ShedFraction > 1 {
		return bad("ShedFraction %v must be within [0, 1]", p.ShedFraction)
	}
	throttles := p.RatePerSecond != 0 || p.Burst != 0 || p.MaxConcurrent != 0 || p.Adaptive
	switch p.Mode {
	case Throttle:
		if p.RatePerSecond == 0 && p.MaxConcurrent == 0 && !p.Adaptive {
			return bad("throttle needs RatePerSecond > 0, MaxConcurrent > 0 or Adaptive")
		}
		if p.Burst != 0 && p.RatePerSecond == 0 {
			return bad("Burst %d without RatePerSecond", p.Burst)
		}
		if p.ShedFraction != 0 {
			return bad("ShedFraction %v is only for mode shed, not throttle", p.ShedFraction)
		}
	case Shed:
		if p.ShedFraction == 0 {
			return bad("shed needs ShedFraction in (0, 1]")
		}
		if throttles {
			return bad("%s is only for mode throttle, not shed", p.throttleField())
		}
	case Normal, Disable:
		if throttles {
			return bad("%s is only for mode throttle: mode %s takes no rate, concurrency or shed fields", p.throttleField(), p.Mode)
		}
		if p.ShedFraction != 0 {
			return bad("ShedFraction %v is only for mode shed: mode %s takes no rate, concurrency or shed fields", p.ShedFraction, p.Mode)
		}
	}
	return nil
}

// throttleField names the first of the Throttle-only fields that p sets,
// with its value.
func (p Policy) throttleField() string {
	switch {
	case p.RatePerSecond != 0:
		return fmt.Sprintf("RatePerSecond %v", p.RatePerSecond)
	case p.Burst != 0:
		return fmt.Sprintf("Burst %d", p.Burst)
	case p.MaxConcurrent != 0:
		return fmt.Sprintf("MaxConcurrent %d", p.MaxConcurrent)
	default:
		return "Adaptive"
	}
}

// String describes the policy in a few words, e.g.
// "throttle 50/s burst 10, 8 concurrent".
func (p Policy) String() string {
	var parts []string
	if p.RatePerSecond > 0 {
		parts = append(parts, fmt.Sprintf("%g/s burst %d", p.RatePerSecond, max(p.Burst, 1)))
	}
	if p.MaxConcurrent > 0 {
		parts = append(parts, fmt.Sprintf("%d concurrent", p.MaxConcurrent))
	}
	if p.Adaptive {
		parts = append(parts, "adaptive")
	}
	if p.Mode == Shed {
		parts = append(parts, fmt.Sprintf("%.0f%%", p.ShedFraction*100))
	}
	if len(parts) == 0 {
		return p.Mode.String()
	}
	return p.Mode.String() + " " + strings.Join(parts, ", ")
}

// Status is one function's current state, as [Controller.Status] and the
// status handler report it.
type Status struct {
	// Function is the function's name.
	Function string `json:"function"`
	// Mode is the mode in force now.
	Mode Mode `json:"mode"`
	// Policy is the full policy in force (Mode Normal when not degraded).
	Policy Policy `json:"policy"`
	// Since is when the current mode began (zero for a function that was
	// declared in Options.Functions and never changed).
	Since time.Time `json:"since,omitzero"`
	// Reason is what users are told; empty in Normal mode.
	Reason string `json:"reason,omitempty"`
	// Until is when the degradation ends by itself; zero in Normal mode.
	Until time.Time `json:"until,omitzero"`
	// Limit is the concurrency limit in force for a throttled function
	// (the adaptive limit's current value when Adaptive), 0 if none.
	Limit int `json:"limit,omitempty"`
	// InFlight is the number of requests admitted by Acquire and not yet
	// released (requests admitted by Allow are not counted).
	InFlight int `json:"inFlight,omitempty"`
}

var _ json.Marshaler = (*statusJSON)(nil)

// statusJSON is the status handler's document.
type statusJSON struct {
	Degraded  bool       `json:"degraded"`
	Time      time.Time  `json:"time"`
	Functions []Status   `json:"functions"`
	Guard     GuardState `json:"guard"` // the critical guard's state and last explanation

}

// MarshalJSON encodes the document; Functions is never null.
func (s *statusJSON) MarshalJSON() ([]byte, error) {
	type plain statusJSON
	c := *s
	if c.Functions == nil {
		c.Functions = []Status{}
	}
	return json.Marshal((*plain)(&c))
}
