package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

func init() { hal.Register("sim", hal.DriverFunc(open)) }

// Config is the JSON configuration of the "sim" driver.
type Config struct {
	Capacity hal.Vector `json:"capacity"`
}

func open(config string) (hal.Device, error) {
	var c Config
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return nil, fmt.Errorf("sim: config: %w", err)
	}
	if len(c.Capacity) == 0 {
		return nil, fmt.Errorf("sim: config: field \"capacity\" is empty")
	}
	if err := c.Capacity.Validate(); err != nil {
		return nil, fmt.Errorf("sim: config field \"capacity\": %w", err)
	}
	return New(c.Capacity), nil
}

// Device is the simulated device. The zero value is not usable; call [New].
// All methods are safe for concurrent use.
type Device struct {
	mu       sync.Mutex // guards every field below
	capacity hal.Vector
	allocs   map[string]hal.Allocation
	usage    map[string]hal.Vector
	history  []Event
	failApply, failUndo,
	failCapacity error
	delay time.Duration
}

// Event is one entry of the device's history.
type Event struct {
	Op     string // "apply" or "undo"
	Allocs []hal.Allocation
	Err    error
}

var (
	_ hal.Device = (*Device)(nil)
	_ hal.Meter  = (*Device)(nil)
)

// New returns a device with the given capacity and no allocations.
func New(capacity hal.Vector) *Device {
	return &Device{capacity: capacity.Clone(), allocs: map[string]hal.Allocation{}, usage: map[string]hal.Vector{}}
}

// FailApply makes the next Apply fail with err (nil clears it).
func (d *Device) FailApply(err error) { d.mu.Lock(); d.failApply = err; d.mu.Unlock() }

// FailUndo makes the next Undo call that would change state fail with err
// (nil clears it). The failed Undo changes nothing; a later call retries.
func (d *Device) FailUndo(err error) { d.mu.Lock(); d.failUndo = err; d.mu.Unlock() }

// FailCapacity makes every Capacity call fail with err until cleared with nil.
func (d *Device) FailCapacity(err error) { d.mu.Lock(); d.failCapacity = err; d.mu.Unlock() }

// SetDelay makes Apply and Undo take at least delay, or until their context
// ends, whichever is first.
func (d *Device) SetDelay(delay time.Duration) { d.mu.Lock(); d.delay = delay; d.mu.Unlock() }

// SetUsage sets what [Device.Usage] reports for function.
func (d *Device) SetUsage(function string, usage hal.Vector) {
	d.mu.Lock()
	d.usage[function] = usage.Clone()
	d.mu.Unlock()
}

// Allocations returns the allocations in force, keyed by function.
func (d *Device) Allocations() map[string]hal.Allocation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.allocs)
}

// History returns every Apply and Undo so far, oldest first.
func (d *Device) History() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.history)
}

// Capacity returns the configured capacity.
func (d *Device) Capacity(ctx context.Context) (hal.Vector, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failCapacity != nil {
		return nil, d.failCapacity
	}
	return d.capacity.Clone(), nil
}

// Usage returns what [Device.SetUsage] set for function, or an error
// wrapping [hal.ErrUnknownFunction].
func (d *Device) Usage(ctx context.Context, function string) (hal.Vector, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.usage[function]
	if !ok {
		return nil, fmt.Errorf("sim: usage of %q: %w", function, hal.ErrUnknownFunction)
	}
	return u.Clone(), nil
}

// Apply validates allocs, checks that the guarantees in force afterwards
// fit the capacity, and records them. It changes nothing on error.
func (d *Device) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	if err := d.wait(ctx); err != nil {
		return nil, fmt.Errorf("sim: apply: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failApply; err != nil {
		d.failApply = nil
		d.history = append(d.history, Event{Op: "apply", Allocs: allocs, Err: err})
		return nil, fmt.Errorf("sim: apply: %w", err)
	}
	next := maps.Clone(d.allocs)
	for _, a := range allocs {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("sim: apply: %w", err)
		}
		for r := range a.Guarantee {
			if _, ok := d.capacity[r]; !ok {
				return nil, fmt.Errorf("sim: apply: function %q: unknown resource %q", a.Function, r)
			}
		}
		next[a.Function] = hal.Allocation{Function: a.Function, Guarantee: a.Guarantee.Clone(), Limit: a.Limit.Clone()}
	}
	total := hal.Vector{}
	for _, a := range next {
		total = total.Add(a.Guarantee)
	}
	if short := total.Shortfall(d.capacity); len(short) > 0 {
		return nil, fmt.Errorf("sim: apply: guarantees exceed capacity by %v", short)
	}
	prev := d.allocs
	d.allocs = next
	d.history = append(d.history, Event{Op: "apply", Allocs: slices.Clone(allocs)})
	return hal.Once(func(ctx context.Context) error { return d.restore(ctx, prev) }), nil
}

func (d *Device) restore(ctx context.Context, prev map[string]hal.Allocation) error {
	if err := d.wait(ctx); err != nil {
		return fmt.Errorf("sim: undo: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failUndo; err != nil {
		d.failUndo = nil
		d.history = append(d.history, Event{Op: "undo", Err: err})
		return fmt.Errorf("sim: undo: %w", err)
	}
	d.allocs = prev
	d.history = append(d.history, Event{Op: "undo"})
	return nil
}

func (d *Device) wait(ctx context.Context) error {
	d.mu.Lock()
	delay := d.delay
	d.mu.Unlock()
	if delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
