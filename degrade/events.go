package degrade

import (
	"fmt"
	"runtime/debug"
	"slices"
	"time"
)

// Cause says why a function's mode changed.
type Cause int

// The causes of a mode change.
const (
	// CauseSet: [Controller.Set] put the function into a mode.
	CauseSet Cause = iota
	// CauseClear: [Controller.Clear] returned it to Normal.
	CauseClear
	// CauseExpired: its window reached its deadline.
	CauseExpired
	// CauseGuard: the critical guard lowered every adaptive limit, or
	// restored them in full (Event.Guard says why; Function is empty).
	CauseGuard
)

// String returns "set", "clear", "expired" or "guard".
func (c Cause) String() string {
	switch c {
	case CauseSet:
		return "set"
	case CauseClear:
		return "clear"
	case CauseExpired:
		return "expired"
	case CauseGuard:
		return "guard"
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// MarshalText encodes the cause by name.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Event is one change of a function's mode, as delivered to subscribers.
type Event struct {
	Function string    `json:"function"`
	Cause    Cause     `json:"cause"`
	From     Mode      `json:"from"`
	To       Mode      `json:"to"`
	Policy   Policy    `json:"policy"`         // the new policy (Mode Normal when restored)
	Reason   string    `json:"reason"`         // the degradation's reason (also on its end)
	At       time.Time `json:"at"`             // when the change took effect
	Until    time.Time `json:"until,omitzero"` // the new window's deadline; zero when restored
	// Guard is the critical guard's state after a CauseGuard change, nil
	// otherwise.
	Guard *GuardState `json:"guard,omitempty"`
}

// Subscribe calls fn on every mode change, in the order the changes
// happened, until cancel is called. fn runs on the goroutine that made the
// change (or the first one of several concurrent changes), after the
// controller's lock is released: it may call the controller, but it should
// not block; hand slow work (mail, chat) to a goroutine of your own. A call
// already under way when cancel is invoked may still complete.
//
// A panic in fn is recovered: it never reaches the caller of Set, Clear,
// Status or Acquire (a bug in a notification must not abort a mode change,
// nor an update that drives one). It is logged at Error with its stack
// through Options.Logger, counted in updraft_degrade_subscriber_panics_total
// (see [Controller.Collector]), and the remaining subscribers still receive
// the event.
func (c *Controller) Subscribe(fn func(Event)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	c.mu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs = append(c.subs, subscriber{id: id, fn: fn})
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.subs = slices.DeleteFunc(c.subs, func(s subscriber) bool { return s.id == id })
		c.mu.Unlock()
	}
}

// deliver drains the event queue unless another goroutine already is. Call
// it after releasing mu whenever an event may have been queued.
func (c *Controller) deliver() {
	c.mu.Lock()
	if c.delivering {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	locked := true
	defer func() {
		// Also runs when a subscriber panics, so delivery is not wedged.
		if !locked {
			c.mu.Lock()
		}
		c.delivering = false
		c.mu.Unlock()
	}()
	for len(c.queue) > 0 {
		ev := c.queue[0]
		c.queue = c.queue[1:]
		subs := slices.Clone(c.subs) // in subscription order
		c.mu.Unlock()
		locked = false
		for _, s := range subs {
			c.call(s, ev)
		}
		c.mu.Lock()
		locked = true
	}
}

// call runs one subscriber, recovering and reporting its panic.
func (c *Controller) call(s subscriber, ev Event) {
	defer func() {
		if v := recover(); v != nil {
			c.subscriberPanics.Add(1)
			c.log.Error("degrade: subscriber panicked; event not delivered to it",
				"function", ev.Function, "to", ev.To.String(), "cause", ev.Cause.String(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	s.fn(ev)
}

// subscriber is one Subscribe call.
type subscriber struct {
	id uint64
	fn func(Event)
}
