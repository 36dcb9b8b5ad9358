package validate

import "time"

// Clock is the time source a [Suite] uses for per-check timeouts, retry
// delays and durations. Tests inject a manual clock so timeouts happen
// without waiting; the zero Options use the system clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, unless
	// the returned stop is called first; stop reports whether it prevented
	// the call, like (*time.Timer).Stop.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the [Clock] backed by package time.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
