package validate_test

import (
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/validate"
)

// manualClock is a validate.Clock whose time moves only when a test calls
// Advance; waitTimer lets the test wait until the Suite has armed a timer.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time      // guarded by mu
	timers  []*manualTimer // pending timers; guarded by mu
	changed chan struct{}  // closed and replaced when timers change; guarded by mu
}

type manualTimer struct {
	at time.Time
	d  time.Duration
	f  func()
}

var _ validate.Clock = (*manualClock)(nil)

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), d: d, f: f}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, p := range c.timers {
			if p == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				c.notifyLocked()
				return true
			}
		}
		return false
	}
}

func (c *manualClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves time forward by d and fires, each in its own goroutine,
// the timers that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.notifyLocked()
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

// waitTimer blocks until a timer of duration d is pending.
func (c *manualClock) waitTimer(t testing.TB, d time.Duration) {
	t.Helper()
	guard := time.NewTimer(10 * time.Second) // a guard against a hung test, not synchronisation
	defer guard.Stop()
	for {
		c.mu.Lock()
		for _, p := range c.timers {
			if p.d == d {
				c.mu.Unlock()
				return
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("no timer of %s was armed within 10s", d)
		}
	}
}
