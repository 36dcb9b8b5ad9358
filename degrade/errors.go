package degrade

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// Errors callers branch on, checked with errors.Is. A rejected request's
// error also unwraps to a [*RejectedError] (errors.As) carrying the details
// a client needs.
var (
	// ErrDisabled: the function is disabled for a planned window.
	ErrDisabled = errors.New("degrade: function disabled")
	// ErrThrottled: the function is over its rate or concurrency limit.
	ErrThrottled = errors.New("degrade: function throttled")
	// ErrShed: the request was dropped to shed load.
	ErrShed = errors.New("degrade: request shed")
	// ErrUnknownFunction: the name is empty, or not among
	// Options.Functions when that list is set.
	ErrUnknownFunction = errors.New("degrade: unknown function")
	// ErrInvalidPolicy: a policy field is out of range or does not fit the mode.
	ErrInvalidPolicy = errors.New("degrade: invalid policy")
	// ErrWindowPassed: the window's end is not in the future.
	ErrWindowPassed = errors.New("degrade: window already passed")
	// ErrInvalidOptions: an Options field is out of range.
	ErrInvalidOptions = errors.New("degrade: invalid options")
	// ErrWindowTooLong: the window's end is further away than
	// Options.MaxWindow.
	ErrWindowTooLong = errors.New("degrade: window too long")
)

// RejectedError describes a request the controller did not admit. It
// unwraps to [ErrDisabled], [ErrThrottled] or [ErrShed]. The controller may
// hand the same *RejectedError to several rejected requests (so refusing
// costs no allocation): treat it as read-only.
type RejectedError struct {
	// Function is the function that rejected the request.
	Function string
	// Mode is the mode in force.
	Mode Mode
	// Reason is the operator's reason for the degradation.
	Reason string
	// Until is when the degradation ends by itself.
	Until time.Time
	// RetryAfter is how long the client should wait before trying again,
	// rounded up to 10ms (to whole seconds from 10s on).
	RetryAfter time.Duration

	cause error                              // ErrDisabled, ErrThrottled or ErrShed
	cache *atomic.Pointer[renderedRejection] // HTTP form, set by the controller; nil in hand-made values
}

// Error describes the rejection for logs.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("degrade: %q rejected (%s until %s, reason %q), retry after %s: %v",
		e.Function, e.Mode, e.Until.UTC().Format(time.RFC3339), e.Reason, e.RetryAfter, e.cause)
}

// Unwrap returns the sentinel: ErrDisabled, ErrThrottled or ErrShed.
func (e *RejectedError) Unwrap() error { return e.cause }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least 1),
// the value of an HTTP Retry-After header.
func (e *RejectedError) RetryAfterSeconds() int64 {
	s := math.Ceil(e.RetryAfter.Seconds())
	if s < 1 {
		return 1
	}
	return int64(s)
}

// Message is a plain-language sentence for the user: what is reduced, why,
// and when it is expected to end, e.g. "Search is temporarily disabled
// while we update the service. It is expected back by 14:05 UTC. Please try
// again in 300 seconds."
func (e *RejectedError) Message() string {
	why := e.Reason
	if why == "" {
		why = "planned maintenance"
	}
	var what string
	switch e.Mode {
	case Disable:
		what = fmt.Sprintf("%q is temporarily unavailable (%s).", e.Function, why)
	case Throttle:
		what = fmt.Sprintf("%q is running at reduced capacity (%s) and this request was over its limit.", e.Function, why)
	default:
		what = fmt.Sprintf("%q is running at reduced capacity (%s) and this request was turned away to protect the rest of the service.", e.Function, why)
	}
	wait := strconv.FormatInt(e.RetryAfterSeconds(), 10) + " seconds"
	if e.RetryAfterSeconds() == 1 {
		wait = "1 second"
	}
	return fmt.Sprintf("%s Full service is expected by %s. Please try again in %s.",
		what, e.Until.UTC().Format("2006-01-02 15:04:05 MST"), wait)
}
