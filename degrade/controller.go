package degrade

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// DefaultPressureInterval is how often [Controller.Run] reads the pressure
// source when Options.PressureInterval is zero.
const DefaultPressureInterval = 5 * time.Second

// DefaultMaxWindow is the longest degradation window [Controller.Set]
// accepts when Options.MaxWindow is zero.
const DefaultMaxWindow = 24 * time.Hour

// maxFunctionName bounds function names, which travel in HTTP headers.
const maxFunctionName = 200

// Options configure a [Controller]. The zero value is usable: real time, no
// logs, any function name accepted, default adaptive settings, no pressure
// source.
type Options struct {
	// Clock returns the current time; nil means time.Now. Tests pass a fake
	// clock to move windows and rate limits without sleeping.
	Clock func() time.Time
	// Logger receives mode changes at Info; nil discards.
	Logger *slog.Logger
	// Functions, when not empty, is the closed set of function names the
	// controller knows: Set and Clear reject other names with
	// [ErrUnknownFunction], and every listed function shows in Status and
	// metrics from the start. When empty, any valid name may be Set.
	Functions []string
	// Adaptive tunes adaptive concurrency limits; zero fields take defaults.
	Adaptive AdaptiveOptions
	// Pressure, when set, is read by [Controller.Run] and tightens adaptive
	// limits as the machine comes under pressure. [NewPSI] reads Linux PSI
	// for the machine, [NewCgroupPSI] for one cgroup v2 group.
	Pressure PressureSource
	// Guard tunes the critical guard, which scales every Adaptive throttle
	// by the critical functions' latency (reported with
	// [Controller.ObserveCritical]) and the Go scheduler's latency; zero
	// fields take defaults. See [GuardOptions].
	Guard GuardOptions
	// PressureInterval is how often Run reads Pressure (0 =
	// DefaultPressureInterval).
	PressureInterval time.Duration
	// MaxWindow is the longest window Set accepts (0 = DefaultMaxWindow), so
	// a deadline computed wrongly (a year instead of an hour) cannot leave a
	// function degraded for good. Set it higher for longer planned windows.
	MaxWindow time.Duration
	// RequestPriority picks a request's [Priority] for Shed in the HTTP
	// middleware; nil gives every request PriorityNormal. Do not trust a
	// client-sent header here unless clients are trusted.
	RequestPriority func(*http.Request) Priority
}

// Controller puts named functions into Normal, Throttle, Disable or Shed
// mode for planned windows, admits or rejects their requests, and tells
// users and the host what is reduced. Create it with [New] (or [MustNew]).
//
// All methods are safe for concurrent use. The hot path, [Controller.Acquire]
// and [Controller.Allow], takes no lock: it reads an immutable map and the
// function's current window through atomics, and the limiters are atomic
// compare-and-swap loops. Mode changes (Set, Clear, a window's end) are
// serialised by one mutex and swap the window atomically, so requests see
// either the old or the new policy, never a mix.
type Controller struct {
	now             func() time.Time
	log             *slog.Logger
	closed          map[string]bool // Options.Functions; nil when open; read-only
	adaptive        AdaptiveOptions
	pressure        PressureSource
	pressureEvery   time.Duration
	maxWindow       time.Duration
	requestPriority func(*http.Request) Priority

	fns      atomic.Pointer[map[string]*function] // copy-on-write, replaced under mu
	degraded atomic.Pointer[string]               // header value: degraded functions, sorted
	factor   pressureFactor                       // share of adaptive limits kept

	subscriberPanics atomic.Uint64 // subscriber calls that panicked (recovered)
	guard            *guard        // the critical guard; immutable pointer
	guardFactor      pressureFactor

	mu         sync.Mutex   // serialises mode changes; guards the fields below and function.since
	subs       []subscriber // in subscription order
	nextSub    uint64
	queue      []Event // events waiting for delivery, in order
	delivering bool    // a goroutine is draining queue
}

// function is one named function's state. The pointer stays the same for
// the controller's life; its window changes.
type function struct {
	// Read by every request, written at mode changes.
	name     string
	win      atomic.Pointer[window] // nil: Normal
	release  func()                 // ends one admission; shared by every admission that measures nothing
	since    time.Time              // when the current Normal began; guarded by Controller.mu
	past     counters               // rejections of ended windows, folded in under Controller.mu
	folded   atomic.Uint64          // admissions moved out of state's high half (multiples of foldAt)
	admitted uint64                 // admissions last reported; guarded by Controller.mu (see admissionsLocked)

	// Written by every request, alone on its cache line (away from the
	// fields above, which every request reads): an admission is one atomic
	// add or compare-and-swap on it, its release one atomic add.
	_     [64]byte
	state atomic.Uint64 // high 32 bits: admissions (mod foldAt, see fold); low 32 bits: in flight
	_     [56]byte
}

// The halves of function.state. An admission adds admitOne (one more
// admission, one more in flight), a release subtracts 1, an admission that
// takes no slot (Allow) adds admitUnit. The in-flight half cannot carry
// into the admissions half: that would take 2^32 requests in flight at once.
const (
	admitUnit    = 1 << 32
	admitOne     = admitUnit | 1 // one admission holding a slot
	inflightMask = admitUnit - 1
	// foldAt is where the admissions half is emptied into function.folded,
	// long before it could wrap (2^32).
	foldAt = 1 << 31
)

// fold is called with the value of state after an admission. Exactly one
// admission sees the admissions half reach foldAt; it moves foldAt
// admissions from state into folded.
func (f *function) fold(v uint64) {
	if v>>32 == foldAt {
		f.state.Add(^(uint64(foldAt)<<32 - 1)) // subtracts foldAt<<32
		f.folded.Add(foldAt)
	}
}

// admit counts one admission holding a slot, with no limit.
func (f *function) admit() {
	f.fold(f.state.Add(admitOne))
}

// admitWithin takes a slot if fewer than limit are in flight, adding add
// to state (admitOne, or 1 for a slot whose admission is counted later),
// and returns the number in flight with it (0 when refused).
//
// Uncontended it is one compare-and-swap. When the swap fails, another
// core is changing the word too, and a swap loop would fail again for as
// long as it does (two goroutines took about 60 ns a pair against 25 for
// x/sync/semaphore's mutex); instead the slot is taken with one add and
// given back if that went over the limit. While it is given back the word
// reads one over, so a request racing at the limit is refused as it would
// have been an instant earlier; the admissions count is added only once
// the slot is kept, so it never counts a refusal.
func (f *function) admitWithin(limit int64, add uint64) (n int64) {
	v := f.state.Load()
	if int64(v&inflightMask) >= limit {
		return 0
	}
	if f.state.CompareAndSwap(v, v+add) {
		if add != 1 {
			f.fold(v + add)
		}
		return int64(v&inflightMask) + 1
	}
	return f.admitByAdd(limit, add)
}

// admitByAdd is admitWithin's contended path: one add, given back if it
// went over the limit.
func (f *function) admitByAdd(limit int64, add uint64) (n int64) {
	v := f.state.Add(1)
	if n = int64(v & inflightMask); n > limit {
		f.state.Add(^uint64(0))
		return 0
	}
	if add != 1 {
		f.fold(f.state.Add(add - 1))
	}
	return n
}

// count counts one admission that takes no slot (Allow).
func (f *function) count() {
	f.fold(f.state.Add(admitUnit))
}

// done ends one admission holding a slot: its release.
func (f *function) done() { f.state.Add(^uint64(0)) }

// inFlight returns the number of admissions holding a slot.
func (f *function) inFlight() int64 { return int64(f.state.Load() & inflightMask) }

// admissionsLocked returns the function's admissions so far. A reader can
// see a fold half done (state emptied, folded not yet added) and read
// foldAt too few; it then reports the last value it reported, so the
// count never goes back. Caller holds Controller.mu.
func (f *function) admissionsLocked() uint64 {
	n := f.folded.Load() + f.state.Load()>>32
	if n > f.admitted {
		f.admitted = n
	}
	return f.admitted
}

// counters tally requests by outcome.
type counters struct {
	admitted, throttled, disabled, shed atomic.Uint64
}

// addTo adds c's tallies to dst.
func (c *counters) addTo(dst *counters) {
	dst.admitted.Add(c.admitted.Load())
	dst.throttled.Add(c.throttled.Load())
	dst.disabled.Add(c.disabled.Load())
	dst.shed.Add(c.shed.Load())
}

// window is one degradation: a policy in force from since until until.
// The configuration fields are immutable after creation; the limiter state,
// tallies, expiring and rejections are atomics; timer is guarded by
// Controller.mu.
type window struct {
	// The fields requests write come first and together, so that a request
	// touches few cache lines: the rate limiter's state, the request
	// tallies and the shedding counters.
	bucket tokenBucket // Throttle with a rate (rateLimited)
	counts counters    // rejections under this window (admissions count in function.state); folded into function.past when it ends
	shed   shedder     // Shed

	rateLimited bool // Throttle with a rate
	clocked     bool // rateLimited or adaptive: every request reads the clock
	slotsOnly   bool // Throttle with only a fixed concurrency limit (fixed > 0)
	policy      Policy
	reason      string
	since       time.Time
	until       time.Time
	untilNano   int64
	fixed       int64          // Throttle: fixed concurrency limit, 0 = none
	adaptive    *adaptiveLimit // Throttle with Adaptive
	timer       *time.Timer    // ends the window; guarded by Controller.mu
	expiring    atomic.Bool    // the hot path saw the deadline pass and asked for cleanup

	// rejections caches the last rejection built per cause (disabled,
	// throttled, shed) for reuse; see window.reject.
	rejections [3]atomic.Pointer[RejectedError]
}

// New returns a Controller, or an error naming the option at fault (an
// invalid adaptive setting, a negative interval, a bad or repeated name in
// Functions). [MustNew] panics instead.
func New(opts Options) (*Controller, error) {
	adaptive, err := opts.Adaptive.withDefaults()
	if err != nil {
		return nil, err
	}
	guardOpts, err := opts.Guard.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.PressureInterval < 0 {
		return nil, fmt.Errorf("degrade: Options.PressureInterval %s must be >= 0: %w", opts.PressureInterval, ErrInvalidOptions)
	}
	if opts.MaxWindow < 0 {
		return nil, fmt.Errorf("degrade: Options.MaxWindow %s must be >= 0: %w", opts.MaxWindow, ErrInvalidOptions)
	}
	c := &Controller{
		now:             opts.Clock,
		log:             opts.Logger,
		adaptive:        adaptive,
		pressure:        opts.Pressure,
		pressureEvery:   opts.PressureInterval,
		maxWindow:       opts.MaxWindow,
		requestPriority: opts.RequestPriority,
		guard:           newGuard(guardOpts),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.pressureEvery == 0 {
		c.pressureEvery = DefaultPressureInterval
	}
	if c.maxWindow == 0 {
		c.maxWindow = DefaultMaxWindow
	}
	fns := map[string]*function{}
	if len(opts.Functions) > 0 {
		c.closed = map[string]bool{}
		for i, name := range opts.Functions {
			if err := checkName(name); err != nil {
				return nil, fmt.Errorf("degrade: Options.Functions[%d]: %w", i, err)
			}
			if c.closed[name] {
				return nil, fmt.Errorf("degrade: Options.Functions[%d]: %q listed twice: %w", i, name, ErrInvalidOptions)
			}
			c.closed[name] = true
			fns[name] = newFunction(name)
		}
	}
	c.fns.Store(&fns)
	empty := ""
	c.degraded.Store(&empty)
	return c, nil
}

// MustNew is [New] for options fixed in the program: it panics where New
// returns an error, as regexp.MustCompile does.
func MustNew(opts Options) *Controller {
	c, err := New(opts)
	if err != nil {
		panic(err)
	}
	return c
}

func newFunction(name string) *function {
	f := &function{name: name}
	f.release = f.done
	return f
}

// checkName reports whether name can be a function name: non-empty, at most
// 200 bytes, printable, and without commas (names are listed in a header).
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty function name: %w", ErrUnknownFunction)
	case len(name) > maxFunctionName:
		return fmt.Errorf("function name %.20q... is longer than %d bytes: %w", name, maxFunctionName, ErrUnknownFunction)
	case strings.ContainsRune(name, ','):
		return fmt.Errorf("function name %q contains a comma: %w", name, ErrUnknownFunction)
	case strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("function name %q contains a non-printable character: %w", name, ErrUnknownFunction)
	}
	return nil
}

// lookup returns the function's state, or nil for a function never declared
// nor Set (always Normal).
func (c *Controller) lookup(name string) *function {
	return (*c.fns.Load())[name]
}

// Set puts function into p's mode from now until until, when it returns to
// Normal by itself; users are told reason. A Set on a function already
// degraded replaces its window. A Normal policy is the same as
// [Controller.Clear], except that it is no error for a function never Set.
//
// Errors wrap [ErrUnknownFunction] (empty or malformed name, or not in
// Options.Functions), [ErrInvalidPolicy] (see [Policy.Validate]),
// [ErrWindowPassed] (until is not after now) or [ErrWindowTooLong] (until
// is more than Options.MaxWindow away); on error nothing changes.
func (c *Controller) Set(function string, p Policy, reason string, until time.Time) error {
	if err := c.checkKnown(function); err != nil {
		return fmt.Errorf("degrade: set %q: %w", function, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("degrade: set %q: %w", function, err)
	}
	if p.Mode == Normal {
		if c.lookup(function) == nil {
			return nil // never degraded: already Normal
		}
		return c.Clear(function)
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("degrade: set %q: reason %q contains a non-printable character: %w", function, reason, ErrInvalidPolicy)
	}
	c.mu.Lock()
	now := c.now()
	if !until.After(now) {
		c.mu.Unlock()
		return fmt.Errorf("degrade: set %q: until %s is not after now %s: %w",
			function, until.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano), ErrWindowPassed)
	}
	if until.Sub(now) > c.maxWindow {
		c.mu.Unlock()
		return fmt.Errorf("degrade: set %q: until %s is %s away, more than Options.MaxWindow %s: %w",
			function, until.UTC().Format(time.RFC3339), until.Sub(now).Round(time.Second), c.maxWindow, ErrWindowTooLong)
	}
	f := c.functionLocked(function)
	w := c.newWindow(p, reason, now, until)
	old := f.win.Swap(w)
	from := Normal
	if old != nil {
		from = old.policy.Mode
		c.stopTimerLocked(old)
		old.counts.addTo(&f.past)
	}
	c.armTimerLocked(f, w)
	c.changedLocked(Event{Function: function, Cause: CauseSet, From: from, To: p.Mode, Policy: p, Reason: reason, At: now, Until: until})
	c.mu.Unlock()
	c.log.Info("degrade: function degraded", "function", function, "policy", p.String(), "reason", reason, "until", until)
	c.deliver()
	return nil
}

// Clear returns function to Normal now. Clearing a function already Normal
// is not an error; a name never declared nor Set is ([ErrUnknownFunction]).
func (c *Controller) Clear(function string) error {
	if err := checkName(function); err != nil {
		return fmt.Errorf("degrade: clear %q: %w", function, err)
	}
	c.mu.Lock()
	f := c.lookup(function)
	if f == nil {
		c.mu.Unlock()
		return fmt.Errorf("degrade: clear %q: never declared nor set: %w", function, ErrUnknownFunction)
	}
	if !c.endLocked(f, f.win.Load(), CauseClear) {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.deliver()
	return nil
}

// checkKnown validates the name and, with a closed set, its membership.
func (c *Controller) checkKnown(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if c.closed != nil && !c.closed[name] {
		return fmt.Errorf("not among Options.Functions: %w", ErrUnknownFunction)
	}
	return nil
}

// functionLocked returns name's state, creating it (copy-on-write). Caller
// holds mu.
func (c *Controller) functionLocked(name string) *function {
	if f := c.lookup(name); f != nil {
		return f
	}
	fns := maps.Clone(*c.fns.Load())
	f := newFunction(name)
	fns[name] = f
	c.fns.Store(&fns)
	return f
}

func (c *Controller) newWindow(p Policy, reason string, now, until time.Time) *window {
	w := &window{policy: p, reason: reason, since: now, until: until, untilNano: until.UnixNano()}
	switch p.Mode {
	case Throttle:
		if p.RatePerSecond > 0 {
			w.bucket.init(p.RatePerSecond, p.Burst)
			w.rateLimited = true
		}
		if p.Adaptive {
			w.adaptive = newAdaptiveLimit(c.adaptive, p.MaxConcurrent, &c.factor, &c.guardFactor)
		} else {
			w.fixed = int64(p.MaxConcurrent)
		}
	case Shed:
		w.shed.init(p.ShedFraction)
	}
	w.clocked = w.rateLimited || w.adaptive != nil
	w.slotsOnly = p.Mode == Throttle && !w.clocked
	return w
}

// endLocked returns f to Normal if w is still its window, reporting whether
// it did. Caller holds mu and calls deliver after unlocking.
func (c *Controller) endLocked(f *function, w *window, cause Cause) bool {
	if w == nil || !f.win.CompareAndSwap(w, nil) {
		return false
	}
	c.stopTimerLocked(w)
	w.counts.addTo(&f.past)
	at := c.now()
	if cause == CauseExpired && w.until.Before(at) {
		at = w.until
	}
	f.since = at
	c.changedLocked(Event{Function: f.name, Cause: cause, From: w.policy.Mode, To: Normal, Reason: w.reason, At: at})
	c.log.Info("degrade: function restored", "function", f.name, "from", w.policy.Mode.String(), "cause", cause.String())
	return true
}

// expire ends w if its deadline has passed by the controller's clock. The
// window's timer and the hot path call it.
func (c *Controller) expire(f *function, w *window) {
	c.mu.Lock()
	if f.win.Load() != w {
		c.mu.Unlock()
		return
	}
	if remaining := w.until.Sub(c.now()); remaining > 0 {
		// The controller's clock is behind the timer (a test clock): check again later.
		w.expiring.Store(false)
		c.stopTimerLocked(w)
		w.timer = time.AfterFunc(remaining, func() { c.expire(f, w) })
		c.mu.Unlock()
		return
	}
	c.endLocked(f, w, CauseExpired)
	c.mu.Unlock()
	c.deliver()
}

// expireDueLocked ends every window whose deadline has passed. Caller holds
// mu and calls deliver after unlocking.
func (c *Controller) expireDueLocked(now time.Time) {
	for _, f := range *c.fns.Load() {
		if w := f.win.Load(); w != nil && !now.Before(w.until) {
			c.endLocked(f, w, CauseExpired)
		}
	}
}

func (c *Controller) armTimerLocked(f *function, w *window) {
	w.timer = time.AfterFunc(w.until.Sub(c.now()), func() { c.expire(f, w) })
}

func (c *Controller) stopTimerLocked(w *window) {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// changedLocked queues ev for subscribers and refreshes the degraded-functions
// header. Caller holds mu.
func (c *Controller) changedLocked(ev Event) {
	c.queue = append(c.queue, ev)
	var names []string
	for name, f := range *c.fns.Load() {
		if f.win.Load() != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	header := strings.Join(names, ", ")
	c.degraded.Store(&header)
}

// Status returns every known function's state (declared in
// Options.Functions or ever Set), sorted by name. Windows whose deadline has
// passed are ended first, so Status never reports a stale degradation.
func (c *Controller) Status() []Status {
	c.mu.Lock()
	now := c.now()
	c.expireDueLocked(now)
	fns := *c.fns.Load()
	out := make([]Status, 0, len(fns))
	for name, f := range fns {
		s := Status{Function: name, Since: f.since, InFlight: int(f.inFlight())}
		if w := f.win.Load(); w != nil {
			s.Mode, s.Policy, s.Since, s.Reason, s.Until = w.policy.Mode, w.policy, w.since, w.reason, w.until
			s.Limit = int(w.concurrencyLimit())
		}
		out = append(out, s)
	}
	c.mu.Unlock()
	c.deliver()
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Function, b.Function) })
	return out
}

// DegradedFunctions returns the names of the functions not in Normal mode,
// sorted and joined by ", " (empty when all are Normal): the value of the
// [HeaderDegraded] header.
func (c *Controller) DegradedFunctions() string { return *c.degraded.Load() }
