package degrade

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// retryBusy is the Retry-After given when a request is turned away by a
// concurrency limit or by shedding: load that is over its share now is
// likely to fit again soon.
const retryBusy = time.Second

// noRelease is the release of a request of a function never declared nor Set.
func noRelease() {}

// Acquire admits one request of function at [PriorityNormal]. On success,
// release must be called exactly once when the request ends (it frees the
// request's concurrency slot and feeds the adaptive limit). A rejection is
// an error wrapping [ErrDisabled], [ErrThrottled] or [ErrShed] that is also
// a [*RejectedError] (errors.As) carrying Retry-After and the user message;
// release is then nil.
//
// A function never declared nor Set is Normal and admitted without any
// shared write. Acquire takes no lock and is safe for concurrent use. It
// reads the clock only when the window is time-limited (a rate, or an
// adaptive limit that measures latency) or when it is about to refuse a
// request: a request admitted under a window without a rate is admitted
// without reading the clock, and the window ends on its timer (with the
// default clock) or when the first request it would refuse sees its
// deadline passed, so no request is refused after the deadline.
func (c *Controller) Acquire(function string) (release func(), err error) {
	return c.AcquirePriority(function, PriorityNormal)
}

// AcquirePriority is [Controller.Acquire] for a request of priority p, which
// matters only in [Shed] mode: lower priorities are dropped at a higher
// share.
func (c *Controller) AcquirePriority(function string, p Priority) (release func(), err error) {
	f := c.lookup(function)
	if f == nil {
		return noRelease, nil
	}
	return c.acquire(f, p)
}

// acquire is AcquirePriority once the function is found. The common cases
// are kept short: a function in Normal mode is admitted with one atomic add,
// one under a throttle with only a fixed concurrency limit with one
// compare-and-swap (both on the function's state word, which the release
// decrements); everything else goes to acquireSlow.
func (c *Controller) acquire(f *function, p Priority) (release func(), err error) {
	w := f.win.Load()
	if w == nil {
		f.admit()
		return f.release, nil
	}
	if w.slotsOnly {
		if f.admitWithin(w.fixed, admitOne) == 0 {
			return c.refuseBusy(f, w)
		}
		return f.release, nil
	}
	return c.acquireSlow(f, w, p)
}

// refuseBusy refuses a request for want of a concurrency slot under w,
// unless w's deadline has passed, when it admits it instead.
func (c *Controller) refuseBusy(f *function, w *window) (release func(), err error) {
	var now int64
	if c.pastDeadline(f, w, &now) {
		f.admit()
		return f.release, nil
	}
	w.counts.throttled.Add(1)
	return nil, w.reject(f.name, ErrThrottled, retryBusy)
}

// acquireSlow is acquire under a window that is time-limited (a rate, an
// adaptive limit) or in Disable or Shed mode.
func (c *Controller) acquireSlow(f *function, w *window, p Priority) (release func(), err error) {
	var now int64 // Unix nanoseconds; 0 until read
	if w.clocked {
		now = c.now().UnixNano()
		if now >= w.untilNano {
			c.expireSoon(f, w)
			f.admit()
			return f.release, nil
		}
	}
	if expired, err := c.check(f, w, p, &now); expired {
		f.admit()
		return f.release, nil
	} else if err != nil {
		return nil, err
	}
	if w.policy.Mode != Throttle {
		f.admit()
		return f.release, nil
	}
	// Take a concurrency slot first, then a token, giving the slot back if
	// the rate refuses: a refused request never holds either. Under a rate
	// the slot is taken uncounted and the admission counted once the token
	// is granted, so the admissions count never goes back.
	add := uint64(admitOne)
	if w.rateLimited {
		add = 1
	}
	n := f.admitWithin(w.admitLimit(), add)
	if n == 0 {
		return c.refuseBusy(f, w)
	}
	if w.rateLimited { // clocked: now was read above
		if ok, wait := w.bucket.allow(now); !ok {
			f.done()
			w.counts.throttled.Add(1)
			return nil, w.reject(f.name, ErrThrottled, wait)
		}
		f.count()
	}
	if w.adaptive == nil {
		return f.release, nil
	}
	start := now
	return func() {
		end := c.now().UnixNano()
		f.done()
		w.adaptive.observe(time.Duration(end-start), n, end)
	}, nil
}

// Allow reports whether one request of function that needs no release (it
// ends at once, or its duration does not matter) is admitted now, at
// [PriorityNormal]: nil, or a rejection as from [Controller.Acquire]. A
// concurrency limit is checked against the requests in flight without
// taking a slot. Allow takes no lock, reads the clock as Acquire does, and
// is safe for concurrent use.
func (c *Controller) Allow(function string) error {
	return c.AllowPriority(function, PriorityNormal)
}

// AllowPriority is [Controller.Allow] for a request of priority p.
func (c *Controller) AllowPriority(function string, p Priority) error {
	f := c.lookup(function)
	if f == nil {
		return nil
	}
	w := f.win.Load()
	if w == nil {
		f.count()
		return nil
	}
	var now int64
	if w.clocked {
		now = c.now().UnixNano()
		if now >= w.untilNano {
			c.expireSoon(f, w)
			f.count()
			return nil
		}
	}
	if expired, err := c.check(f, w, p, &now); expired {
		f.count()
		return nil
	} else if err != nil {
		return err
	}
	if w.policy.Mode == Throttle {
		if f.inFlight() >= w.admitLimit() {
			if c.pastDeadline(f, w, &now) {
				f.count()
				return nil
			}
			w.counts.throttled.Add(1)
			return w.reject(f.name, ErrThrottled, retryBusy)
		}
		if w.rateLimited {
			if ok, wait := w.bucket.allow(now); !ok {
				w.counts.throttled.Add(1)
				return w.reject(f.name, ErrThrottled, wait)
			}
		}
	}
	f.count()
	return nil
}

// check applies the Disable and Shed modes, counting rejections. Before it
// refuses it checks w's deadline (reading the clock if *now is 0) and
// reports expired instead when the deadline has passed.
func (c *Controller) check(f *function, w *window, p Priority, now *int64) (expired bool, err error) {
	switch w.policy.Mode {
	case Disable:
		if c.pastDeadline(f, w, now) {
			return true, nil
		}
		w.counts.disabled.Add(1)
		return false, w.reject(f.name, ErrDisabled, time.Duration(w.untilNano-*now))
	case Shed:
		if w.shed.drop(p) {
			if c.pastDeadline(f, w, now) {
				return true, nil
			}
			w.counts.shed.Add(1)
			return false, w.reject(f.name, ErrShed, retryBusy)
		}
	}
	return false, nil
}

// pastDeadline reports whether w's deadline has passed, reading the clock
// into *now if it is still 0, and then asks for w to be ended. Requests call
// it before refusing, so that no request is refused after the window.
func (c *Controller) pastDeadline(f *function, w *window, now *int64) bool {
	if *now == 0 {
		*now = c.now().UnixNano()
	}
	if *now < w.untilNano {
		return false
	}
	c.expireSoon(f, w)
	return true
}

// expireSoon asks, once per window, for the window to be ended in the
// background: the request that noticed the deadline does not wait for the
// mode change or its subscribers.
func (c *Controller) expireSoon(f *function, w *window) {
	if w.expiring.CompareAndSwap(false, true) {
		go c.expire(f, w)
	}
}

// admitLimit returns how many requests may be in flight under w now
// (math.MaxInt64 for no limit; 0 when the critical guard closed an
// adaptive throttle).
func (w *window) admitLimit() int64 {
	if w.adaptive != nil {
		return w.adaptive.limit()
	}
	if w.fixed == 0 {
		return math.MaxInt64
	}
	return w.fixed
}

// concurrencyLimit returns the window's concurrency limit now, 0 for none.
func (w *window) concurrencyLimit() int64 {
	if w.adaptive != nil {
		return w.adaptive.limit()
	}
	return w.fixed
}

// reject returns the error for a request turned away by w. RetryAfter is
// rounded up to 10ms (to a second from 10s on), and the error last built
// for the same cause and RetryAfter is reused, so a steady stream of
// refusals allocates nothing; callers treat rejections as read-only.
func (w *window) reject(function string, cause error, retryAfter time.Duration) error {
	quantum := 10 * time.Millisecond
	if retryAfter >= 10*time.Second {
		quantum = time.Second
	}
	retryAfter = (retryAfter + quantum - 1) / quantum * quantum
	slot := &w.rejections[rejectionIndex(cause)]
	if e := slot.Load(); e != nil && e.RetryAfter == retryAfter {
		return e
	}
	e := &RejectedError{
		Function:   function,
		Mode:       w.policy.Mode,
		Reason:     w.reason,
		Until:      w.until,
		RetryAfter: retryAfter,
		cause:      cause,
		cache:      new(atomic.Pointer[renderedRejection]),
	}
	slot.Store(e)
	return e
}

// rejectionIndex maps a rejection sentinel to its slot in window.rejections.
func rejectionIndex(cause error) int {
	switch cause {
	case ErrDisabled:
		return 0
	case ErrThrottled:
		return 1
	default:
		return 2
	}
}

// Handle is one function's admission with its name resolved once: its
// Acquire is [Controller.Acquire] without the name lookup (a string hash
// and a map read). In Normal mode, or under a throttle with only a
// MaxConcurrent limit, a Handle's Acquire and its release are one atomic
// operation each on the function's own cache line when uncontended (an
// admission that collides with another core's takes one more), reading no
// clock and allocating nothing. benchmarks/degrade/acquire-9.txt records
// it (1 s a run, five runs) at 12.9-14.2 ns serially, against
// golang.org/x/sync/semaphore's 25.5-25.9 (TryAcquire+Release) and
// 27.4-27.7 (Acquire+Release); from two goroutines on two cores doing
// nothing but admitting at 27.7-34.9 ns, against 48.5-51.5 and 36.5-40.3
// (a bare shared atomic counter, up and down, took 25.8-26.4); and with
// each slot held through a few hundred nanoseconds of work at 220.3-229.1
// ns, against 255.7-261.9 and 231.2-439.0, the work alone 167.5-168.4. Get it
// with [Controller.Handle]. Safe for concurrent use; it stays valid for
// the controller's life and follows every mode change of its function.
type Handle struct {
	c *Controller
	f *function
}

// Handle returns the admission handle of function. The function becomes
// known to the controller (it shows in Status and metrics, in Normal mode
// until Set). Errors wrap [ErrUnknownFunction] (a malformed name, or one
// not in Options.Functions when that is set).
func (c *Controller) Handle(function string) (*Handle, error) {
	if err := c.checkKnown(function); err != nil {
		return nil, fmt.Errorf("degrade: handle %q: %w", function, err)
	}
	c.mu.Lock()
	f := c.functionLocked(function)
	c.mu.Unlock()
	return &Handle{c: c, f: f}, nil
}

// Acquire is [Controller.Acquire] for the handle's function.
func (h *Handle) Acquire() (release func(), err error) { return h.c.acquire(h.f, PriorityNormal) }

// AcquirePriority is [Controller.AcquirePriority] for the handle's function.
func (h *Handle) AcquirePriority(p Priority) (release func(), err error) { return h.c.acquire(h.f, p) }
