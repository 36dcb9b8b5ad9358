package degrade

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

// Defaults for the zero fields of [GuardOptions].
const (
	DefaultGuardInterval      = 100 * time.Millisecond
	DefaultGuardTolerance     = 2.0
	DefaultGuardRecovery      = 0.05
	DefaultGuardMinSamples    = 5
	DefaultGuardSchedLatency  = 2 * time.Millisecond
	DefaultGuardBaselineShare = 0.05
)

// guardHoldPerOvershoot is the steps a failed probe's recovery curve takes
// to return to the level before the probe, per unit of overshoot (the
// observed latency over the allowed, minus 1); see [GuardOptions].
const guardHoldPerOvershoot = 3

// GuardOptions tune the critical guard: the controller-wide factor, in
// [0, 1], that scales the concurrency limit of every Adaptive throttle so
// that the critical functions keep their latency. Each step (every Interval
// under [Controller.RunGuard], or [Controller.StepGuard]) it compares
//
//   - the critical functions' latency over the step (the 90th percentile of
//     what the host reported with [Controller.ObserveCritical]) with their
//     baseline, and
//   - the Go scheduler's latency over the step (the 99th percentile of
//     runtime/metrics /sched/latencies:seconds) with SchedLatency,
//
// and takes the worse gradient, as Netflix's Gradient2 limit and TCP Vegas
// do: gradient = allowed / observed, at most 1. A gradient below 1 multiplies
// the factor by it at once (fast back-off; a factor under 1% becomes 0,
// closing the adaptive functions until the critical path recovers). A step
// with both inputs within bounds raises the factor by at most Recovery
// (full service no sooner than 1/Recovery calm steps after a close), along
// one of two curves, chosen by the back-off that preceded it:
//
//   - after a back-off the guard did not provoke (the factor had not risen
//     at the step before: the load surged on its own), linearly, by
//     Recovery a step;
//   - after a failed probe (a back-off at the step right after a rise: the
//     factor rose from L, and at the new level the critical path suffered),
//     CUBIC-style (RFC 8312): from F0, the factor the back-off left, it
//     returns to L along L − (L−F0)·(1 − t/K)³ after t calm steps, a
//     concave curve that flattens as it reaches L at step K, and then
//     rises beyond L by Recovery a step. K is 3 steps per unit of the
//     back-off's overshoot (observed/allowed − 1 = 1/gradient − 1), at most
//     2/Recovery steps. So the harder a level hurt, the longer the factor
//     waits just under it before probing it again: a probe that took the
//     critical p90 to 13.5 times its allowance is repeated about 40 steps
//     (4 s) later, not 10, while a sustained overload lasts, whereas after
//     a blip just over the bound (1.3 times: K under one step) the recovery
//     is all but linear, and once the load is gone the factor climbs past L
//     at the linear pace.
//
// The curve (always capped at Recovery a step) is set by the first step of
// each back-off and replaced by the next one. Machine pressure (PSI,
// through Options.Pressure and [Controller.Run]) scales the limits
// separately, see [AdaptiveOptions].
//
// The baseline is the critical latency the guard learned while the critical
// path was within bounds: the first step's p90, then an exponential moving
// average of the p90 of calm steps (weight BaselineShare); steps over the
// tolerance do not move it, so a surge does not become the new normal.
// Hosts that know the unloaded latency set Baseline.
type GuardOptions struct {
	Interval      time.Duration // between steps under RunGuard
	Tolerance     float64       // > 1: critical p90 over Tolerance×baseline is overload
	Recovery      float64       // in (0, 1]: most factor regained per calm step (the linear pace)
	MinSamples    int           // critical samples a step needs to judge latency
	SchedLatency  time.Duration // Go scheduler p99 latency allowed; < 0 ignores the scheduler
	Baseline      time.Duration // known unloaded critical p90; 0 = learn it
	BaselineShare float64       // in (0, 1]: EMA weight of a calm step in the baseline
}

// withDefaults fills zero fields and checks the rest.
func (o GuardOptions) withDefaults() (GuardOptions, error) {
	if o.Interval == 0 {
		o.Interval = DefaultGuardInterval
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultGuardTolerance
	}
	if o.Recovery == 0 {
		o.Recovery = DefaultGuardRecovery
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultGuardMinSamples
	}
	if o.SchedLatency == 0 {
		o.SchedLatency = DefaultGuardSchedLatency
	}
	if o.BaselineShare == 0 {
		o.BaselineShare = DefaultGuardBaselineShare
	}
	bad := func(format string, args ...any) (GuardOptions, error) {
		return o, fmt.Errorf("degrade: Options.Guard."+format+": %w", append(args, ErrInvalidOptions)...)
	}
	switch {
	case o.Interval < 0:
		return bad("Interval %s must be >= 0", o.Interval)
	case !(o.Tolerance > 1) || math.IsInf(o.Tolerance, 0):
		return bad("Tolerance %v must be a finite number > 1", o.Tolerance)
	case !(o.Recovery > 0 && o.Recovery <= 1):
		return bad("Recovery %v must be within (0, 1]", o.Recovery)
	case o.MinSamples < 1:
		return bad("MinSamples %d must be >= 1", o.MinSamples)
	case o.Baseline < 0:
		return bad("Baseline %s must be >= 0", o.Baseline)
	case !(o.BaselineShare > 0 && o.BaselineShare <= 1):
		return bad("BaselineShare %v must be within (0, 1]", o.BaselineShare)
	}
	return o, nil
}

// GuardInput is what one guard step sees. [Controller.StepGuard] takes it
// from the critical latencies reported since the last step and from the
// scheduler; tests and hosts with their own measurements pass it to
// [Controller.StepGuardWith].
type GuardInput struct {
	// Critical are the critical requests' latencies over the step.
	Critical []time.Duration
	// SchedP99 is the Go scheduler's 99th-percentile latency over the step
	// (0 = unknown).
	SchedP99 time.Duration
}

// GuardState explains the guard's last change, for Status, events and
// metrics.
type GuardState struct {
	// Factor is the share of every adaptive limit kept, in [0, 1].
	Factor float64 `json:"factor"`
	// Baseline is the critical latency the guard compares against.
	Baseline time.Duration `json:"baselineNanoseconds,omitzero"`
	// CriticalP90 and SchedP99 are the last step's inputs (0 = none).
	CriticalP90 time.Duration `json:"criticalP90Nanoseconds,omitzero"`
	SchedP99    time.Duration `json:"schedP99Nanoseconds,omitzero"`
	// Why says in words what the last change was and why, e.g.
	// "critical p90 3.1ms over 1.5 x baseline 1ms: factor 1 -> 0.48".
	Why string `json:"why,omitempty"`
	// At is when the factor last changed.
	At time.Time `json:"at,omitzero"`
}

// guard is the controller's critical guard. Its factor is published to the
// adaptive limits through Controller.guardFactor; the rest is guarded by mu.
type guard struct {
	opts GuardOptions

	mu       sync.Mutex // guards the fields below
	samples  []time.Duration
	state    GuardState
	baseline float64 // nanoseconds; 0 = not learned yet
	sched    schedReader
	backoffs uint64 // steps that lowered the factor

	// The recovery curve (see GuardOptions).
	last    float64       // the factor in force during the previous step
	rose    bool          // the previous step raised the factor
	backing bool          // the previous step had a gradient below 1
	curve   recoveryCurve // the recovery since the last back-off
}

// recoveryCurve is the factor's recovery after a back-off: linear by
// Recovery a step; after a failed probe (hold > 0), first back to level
// along a cubic that reaches it, flat, after hold calm steps.
type recoveryCurve struct {
	level float64 // L: the factor before the failed probe
	hold  float64 // K: calm steps to return to level; 0 = linear
	start float64 // F0: the factor the back-off left
	steps int     // t: calm steps since the back-off
}

// next returns the factor after one more calm step (c.steps counts it)
// from the factor from, rising by at most r.
func (c *recoveryCurve) next(from, r float64) float64 {
	next := from + r
	if d := c.level - c.start; c.hold > 0 && d > 0 {
		t := float64(c.steps)
		f := c.level + r*(t-c.hold) // beyond level: linear
		if t < c.hold {
			f = c.level - d*math.Pow(1-t/c.hold, 3) // concave, flat at level
		}
		next = min(max(f, from), next)
	}
	return min(1, next)
}

// maxGuardSamples bounds the critical latencies kept between steps.
const maxGuardSamples = 1 << 14

func newGuard(opts GuardOptions) *guard {
	g := &guard{opts: opts, baseline: float64(opts.Baseline), last: 1}
	g.state.Factor = 1
	g.state.Baseline = opts.Baseline
	return g
}

// ObserveCritical reports the latency of one request of a critical
// function (one the degradation must protect). The critical guard compares
// these with their baseline at each step and tightens every Adaptive
// throttle when they grow (see [GuardOptions]). Safe for concurrent use; it
// takes a short lock and keeps at most 16384 latencies between steps.
func (c *Controller) ObserveCritical(latency time.Duration) {
	g := c.guard
	g.mu.Lock()
	if len(g.samples) < maxGuardSamples {
		g.samples = append(g.samples, latency)
	}
	g.mu.Unlock()
}

// StepGuard runs one guard step on the critical latencies reported since
// the last step and the Go scheduler's latency since the last step, and
// applies the result to every adaptive limit. [Controller.RunGuard] calls it
// every GuardOptions.Interval.
func (c *Controller) StepGuard() GuardState {
	g := c.guard
	g.mu.Lock()
	in := GuardInput{Critical: g.samples}
	g.samples = make([]time.Duration, 0, len(in.Critical))
	if g.opts.SchedLatency > 0 {
		in.SchedP99 = g.sched.p99()
	}
	g.mu.Unlock()
	return c.StepGuardWith(in)
}

// StepGuardWith runs one guard step on in (not on the reported latencies)
// and applies the result. Safe for concurrent use; steps are serialised.
func (c *Controller) StepGuardWith(in GuardInput) GuardState {
	g := c.guard
	g.mu.Lock()
	before := g.state.Factor
	st := g.stepLocked(in, c.now())
	lowered := st.Factor < before
	if lowered {
		g.backoffs++
	}
	g.mu.Unlock()
	if st.Factor == before {
		return st
	}
	c.guardFactor.store(st.Factor)
	c.republish()
	if lowered || st.Factor == 1 {
		c.log.Info("degrade: critical guard", "factor", st.Factor, "why", st.Why)
		c.mu.Lock()
		c.queue = append(c.queue, Event{Cause: CauseGuard, From: Throttle, To: Throttle, Reason: st.Why, At: st.At, Guard: &st})
		c.mu.Unlock()
		c.deliver()
	} else {
		c.log.Debug("degrade: critical guard", "factor", st.Factor, "why", st.Why)
	}
	return st
}

// stepLocked computes the next factor. Caller holds mu.
func (g *guard) stepLocked(in GuardInput, now time.Time) GuardState {
	st := &g.state
	st.CriticalP90, st.SchedP99 = 0, in.SchedP99
	gradient, why := 1.0, ""
	if len(in.Critical) >= g.opts.MinSamples {
		p90 := float64(percentile(in.Critical, 0.90))
		st.CriticalP90 = time.Duration(p90)
		if g.baseline == 0 {
			g.baseline = p90
		}
		allowed := g.opts.Tolerance * g.baseline
		if p90 > allowed {
			gradient = allowed / p90
			why = fmt.Sprintf("critical p90 %s over %g x baseline %s", st.CriticalP90.Round(time.Microsecond), g.opts.Tolerance, time.Duration(g.baseline).Round(time.Microsecond))
		} else {
			g.baseline += g.opts.BaselineShare * (p90 - g.baseline)
		}
		st.Baseline = time.Duration(g.baseline)
	}
	if limit := g.opts.SchedLatency; limit > 0 && in.SchedP99 > limit {
		if s := float64(limit) / float64(in.SchedP99); s < gradient {
			gradient = s
			why = fmt.Sprintf("Go scheduler p99 latency %s over %s", in.SchedP99.Round(time.Microsecond), limit)
		}
	}
	from := st.Factor
	next := from
	if gradient < 1 {
		next = from * gradient
		if next < 0.01 {
			next = 0
		}
		if !g.backing { // the first step of a back-off chooses the curve
			g.curve = recoveryCurve{}
			if g.rose { // a failed probe: the rise from g.last hurt
				hold := min(guardHoldPerOvershoot*(1/gradient-1), 2/g.opts.Recovery)
				g.curve = recoveryCurve{level: g.last, hold: hold}
			}
		}
		g.curve.start, g.curve.steps = next, 0
	} else if from < 1 {
		g.curve.steps++
		next = g.curve.next(from, g.opts.Recovery)
		why = fmt.Sprintf("critical path within bounds: recovering by %.3g", next-from)
		if c := g.curve; c.hold > 0 && float64(c.steps) < c.hold && c.level > c.start {
			why += fmt.Sprintf(" (back towards %.3g, the factor before the failed probe, in %.3g steps)", c.level, c.hold)
		}
	}
	g.last, g.rose, g.backing = from, next > from, gradient < 1
	if next != from {
		st.Factor = next
		st.Why = fmt.Sprintf("%s: factor %.3g -> %.3g", why, from, next)
		st.At = now
	}
	return *st
}

// GuardState returns the critical guard's current state and its last
// explanation.
func (c *Controller) GuardState() GuardState {
	c.guard.mu.Lock()
	defer c.guard.mu.Unlock()
	return c.guard.state
}

// ResetGuard returns the critical guard to full service: factor 1, the
// critical latencies reported since the last step dropped, and the
// scheduler's window restarted; the learned baseline is kept. A host that
// runs the guard only for an update window (the updraft Orchestrator does)
// calls it when the window starts and ends, so a factor lowered in one
// window does not close adaptive throttles set later with no guard running.
// A change of factor is explained and announced as a step's is.
func (c *Controller) ResetGuard() {
	g := c.guard
	g.mu.Lock()
	g.samples = g.samples[:0]
	g.sched.p99()
	before := g.state.Factor
	st := g.state
	g.last, g.rose, g.backing, g.curve = 1, false, false, recoveryCurve{}
	if before != 1 {
		g.state.Factor = 1
		g.state.Why = fmt.Sprintf("guard reset: factor %.3g -> 1", before)
		g.state.At = c.now()
		st = g.state
	}
	g.mu.Unlock()
	if before == 1 {
		return
	}
	c.guardFactor.store(1)
	c.republish()
	c.log.Info("degrade: critical guard", "factor", 1, "why", st.Why)
	c.mu.Lock()
	c.queue = append(c.queue, Event{Cause: CauseGuard, From: Throttle, To: Throttle, Reason: st.Why, At: st.At, Guard: &st})
	c.mu.Unlock()
	c.deliver()
}

// RunGuard steps the critical guard every GuardOptions.Interval until ctx
// is done, then returns ctx.Err(). The caller owns the goroutine RunGuard
// blocks.
func (c *Controller) RunGuard(ctx context.Context) error {
	tick := time.NewTicker(c.guard.opts.Interval)
	defer tick.Stop()
	c.guard.mu.Lock()
	c.guard.sched.p99() // start the scheduler's window now
	c.guard.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			c.StepGuard()
		}
	}
}

// republish recomputes every adaptive limit after a factor changed.
func (c *Controller) republish() {
	for _, fn := range *c.fns.Load() {
		if w := fn.win.Load(); w != nil && w.adaptive != nil {
			w.adaptive.repressure()
		}
	}
}

// percentile returns the q-quantile of ds (nearest rank); ds is sorted in
// place.
func percentile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// schedReader turns the cumulative /sched/latencies:seconds histogram into
// the 99th percentile of the latencies since its last call.
type schedReader struct {
	sample []metrics.Sample
	prev   []uint64
}

const schedLatencies = "/sched/latencies:seconds"

// p99 returns the scheduler's 99th-percentile latency since the last call
// (0 on the first call or with no goroutine scheduled since).
func (r *schedReader) p99() time.Duration {
	if r.sample == nil {
		r.sample = []metrics.Sample{{Name: schedLatencies}}
	}
	metrics.Read(r.sample)
	if r.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := r.sample[0].Value.Float64Histogram()
	var d time.Duration
	if r.prev != nil && len(r.prev) == len(h.Counts) {
		d = histogramQuantile(h.Buckets, h.Counts, r.prev, 0.99)
	}
	r.prev = append(r.prev[:0], h.Counts...)
	return d
}

// histogramQuantile returns the q-quantile of the counts added since prev
// to a runtime/metrics histogram (bucket i spans buckets[i]..buckets[i+1]
// seconds), as the upper bound of the bucket it falls in.
func histogramQuantile(buckets []float64, counts, prev []uint64, q float64) time.Duration {
	var total uint64
	for i := range counts {
		total += counts[i] - prev[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range counts {
		seen += counts[i] - prev[i]
		if seen >= rank {
			upper := buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

// CriticalMiddleware wraps the handler of a critical function: it serves
// every request (it never rejects) and reports each request's latency,
// from entering the middleware to next returning, with
// [Controller.ObserveCritical].
func (c *Controller) CriticalMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { c.ObserveCritical(time.Since(start)) }()
		next.ServeHTTP(w, r)
	})
}
