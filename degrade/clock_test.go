package degrade

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events subscribes to ctl and returns a channel of its events.
func events(t *testing.T, ctl *Controller) <-chan Event {
	t.Helper()
	ch := make(chan Event, 100)
	cancel := ctl.Subscribe(func(ev Event) { ch <- ev })
	t.Cleanup(cancel)
	return ch
}

// nextEvent waits for the next event, failing the test after 10s.
func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}
