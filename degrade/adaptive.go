package degrade

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of [AdaptiveOptions].
const (
	DefaultInitialLimit      = 16
	DefaultMinLimit          = 1
	DefaultMaxLimit          = 1000
	DefaultLatencyTolerance  = 2.0
	DefaultBackoff           = 0.9
	DefaultPressureThreshold = 10.0 // percent, PSI "some avg10"
	DefaultPressureFull      = 60.0 // percent
	DefaultBaselineSamples   = 1000
)

// AdaptiveOptions tune the adaptive concurrency limit of throttle policies
// with Adaptive set. The limit follows AIMD on latency, in the manner of
// Netflix's concurrency-limits and Envoy's adaptive concurrency filter: each
// completed request's latency is compared with the function's baseline (the
// lowest latency seen over the last BaselineSamples requests); a request
// slower than LatencyTolerance times the baseline multiplies the limit by
// Backoff (at most once per observed latency), otherwise the limit grows by
// about one per limit's worth of requests while the limit is in use. The
// result is then scaled down by machine pressure (see [PressureSource]):
// above PressureThreshold percent it shrinks linearly, reaching MinLimit at
// PressureFull percent. Zero fields take the Default* constants.
type AdaptiveOptions struct {
	InitialLimit      int     // starting limit (capped by the policy's MaxConcurrent)
	MinLimit          int     // the limit never goes below this
	MaxLimit          int     // ceiling when the policy's MaxConcurrent is 0
	LatencyTolerance  float64 // > 1: how much slower than baseline counts as overload
	Backoff           float64 // in (0, 1): multiplicative decrease
	PressureThreshold float64 // percent of PSI "some avg10" where tightening starts
	PressureFull      float64 // percent where the limit reaches MinLimit
	BaselineSamples   int     // requests per baseline window
}

// withDefaults fills zero fields and checks the rest.
func (o AdaptiveOptions) withDefaults() (AdaptiveOptions, error) {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&o.InitialLimit, DefaultInitialLimit)
	setInt(&o.MinLimit, DefaultMinLimit)
	setInt(&o.MaxLimit, DefaultMaxLimit)
	setInt(&o.BaselineSamples, DefaultBaselineSamples)
	setFloat(&o.LatencyTolerance, DefaultLatencyTolerance)
	setFloat(&o.Backoff, DefaultBackoff)
	setFloat(&o.PressureThreshold, DefaultPressureThreshold)
	setFloat(&o.PressureFull, DefaultPressureFull)
	bad := func(format string, args ...any) (AdaptiveOptions, error) {
		return o, fmt.Errorf("degrade: Options.Adaptive."+format, args...)
	}
	switch {
	case o.MinLimit < 1:
		return bad("MinLimit %d must be >= 1", o.MinLimit)
	case o.MaxLimit < o.MinLimit:
		return bad("MaxLimit %d must be >= MinLimit %d", o.MaxLimit, o.MinLimit)
	case o.InitialLimit < o.MinLimit || o.InitialLimit > o.MaxLimit:
		return bad("InitialLimit %d must be within [MinLimit %d, MaxLimit %d]", o.InitialLimit, o.MinLimit, o.MaxLimit)
	case !(o.LatencyTolerance > 1) || math.IsInf(o.LatencyTolerance, 0):
		return bad("LatencyTolerance %v must be a finite number > 1", o.LatencyTolerance)
	case !(o.Backoff > 0 && o.Backoff < 1):
		return bad("Backoff %v must be within (0, 1)", o.Backoff)
	case !(o.PressureThreshold >= 0 && o.PressureFull > o.PressureThreshold && o.PressureFull <= 100):
		return bad("PressureThreshold %v and PressureFull %v must satisfy 0 <= threshold < full <= 100", o.PressureThreshold, o.PressureFull)
	case o.BaselineSamples < 1:
		return bad("BaselineSamples %d must be >= 1", o.BaselineSamples)
	}
	return o, nil
}

// pressureFactor maps a PSI percentage to the share of the adaptive limit
// kept: 1 up to the threshold, falling linearly to 0 at full.
func (o AdaptiveOptions) pressureFactor(percent float64) float64 {
	switch {
	case math.IsNaN(percent) || percent <= o.PressureThreshold:
		return 1
	case percent >= o.PressureFull:
		return 0
	}
	return 1 - (percent-o.PressureThreshold)/(o.PressureFull-o.PressureThreshold)
}

// adaptiveLimit is one function's latency-driven concurrency limit. The
// current effective limit is an atomic the hot path reads; observe updates
// it under mu, and skips the sample rather than wait when another goroutine
// holds mu, so releases never queue behind each other.
type adaptiveLimit struct {
	opts    AdaptiveOptions
	ceiling int             // the policy's MaxConcurrent, or opts.MaxLimit
	current atomic.Int64    // effective limit: estimate scaled by pressure
	factor  *pressureFactor // machine pressure; shared by the controller
	guard   *pressureFactor // the critical guard's factor; shared by the controller

	mu           sync.Mutex // guards the fields below
	estimate     float64    // the AIMD limit before pressure
	baseline     time.Duration
	windowMin    time.Duration
	windowCount  int
	lastDecrease int64 // Unix nanoseconds
}

func newAdaptiveLimit(opts AdaptiveOptions, maxConcurrent int, factor, guard *pressureFactor) *adaptiveLimit {
	ceiling := opts.MaxLimit
	if maxConcurrent > 0 {
		ceiling = maxConcurrent
	}
	l := &adaptiveLimit{opts: opts, ceiling: ceiling, factor: factor, guard: guard}
	l.estimate = float64(min(opts.InitialLimit, ceiling))
	l.publish()
	return l
}

// limit returns the effective limit now.
func (l *adaptiveLimit) limit() int64 { return l.current.Load() }

// publish recomputes the effective limit from the estimate, the pressure
// factor (which keeps at least MinLimit) and the critical guard's factor
// (which may close the function: limit 0). Callers hold mu, or own l
// exclusively.
func (l *adaptiveLimit) publish() {
	f := l.factor.load()
	floor := float64(min(l.opts.MinLimit, l.ceiling))
	eff := math.Max(floor, math.Floor(l.estimate*f))
	if g := l.guard; g != nil {
		eff = math.Floor(eff * g.load())
	}
	l.current.Store(int64(eff))
}

// repressure republishes after the pressure factor changed.
func (l *adaptiveLimit) repressure() {
	l.mu.Lock()
	l.publish()
	l.mu.Unlock()
}

// observe feeds one completed request: its latency, how many requests were
// in flight when it was admitted, and the time it ended (Unix nanoseconds).
func (l *adaptiveLimit) observe(latency time.Duration, inflight int64, now int64) {
	if !l.mu.TryLock() {
		return // another release is updating; one sample fewer is harmless
	}
	defer l.mu.Unlock()
	l.observeLocked(latency, inflight, now)
}

func (l *adaptiveLimit) observeLocked(latency time.Duration, inflight int64, now int64) {
	if latency <= 0 {
		latency = 1
	}
	if l.windowCount == 0 || latency < l.windowMin {
		l.windowMin = latency
	}
	l.windowCount++
	if l.baseline == 0 || latency < l.baseline {
		l.baseline = latency
	}
	if l.windowCount >= l.opts.BaselineSamples {
		// Let the baseline rise when the function itself got slower for
		// good (new code, new data), not only when it is overloaded.
		l.baseline = l.windowMin
		l.windowCount = 0
	}
	floor := float64(min(l.opts.MinLimit, l.ceiling))
	switch {
	case float64(latency) > l.opts.LatencyTolerance*float64(l.baseline):
		if now-l.lastDecrease >= int64(latency) {
			l.estimate = math.Max(floor, math.Floor(l.estimate*l.opts.Backoff))
			l.lastDecrease = now
		}
	case float64(inflight) >= l.estimate/2:
		l.estimate = math.Min(float64(l.ceiling), l.estimate+1/l.estimate)
	}
	l.publish()
}

// pressureFactor is the share of adaptive limits kept under the machine's
// current pressure, in [0, 1]. The zero value means 1 (no pressure). It is
// stored as the bits of 1-factor so that the zero value is right.
type pressureFactor struct{ lost atomic.Uint64 }

func (p *pressureFactor) load() float64 { return 1 - math.Float64frombits(p.lost.Load()) }

func (p *pressureFactor) store(f float64) { p.lost.Store(math.Float64bits(1 - f)) }
