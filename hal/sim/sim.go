package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/durable"
)

func init() { hal.Register("sim", hal.DriverFunc(open)) }

// Config is the JSON configuration of the "sim" driver.
type Config struct {
	Capacity hal.Vector `json:"capacity"`
	// StatePath, when set, keeps the allocations in force in this file:
	// loaded by [Open], rewritten atomically (temporary file, fsync,
	// rename) after every change. A device opened again on the same file,
	// in another process, sees them and can undo from a journaled record:
	// what a crash test of a host needs of a device.
	StatePath string `json:"state,omitempty"`
	// Units, when set, are the device's [hal.Units]: Apply refuses an
	// amount of a resource that is not whole in its unit.
	Units map[hal.Resource]hal.Unit `json:"units,omitempty"`
}

func open(config string) (hal.Device, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader([]byte(config)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("sim: config: %w", err)
	}
	return Open(c)
}

// Open returns a device configured by c, with the allocations its
// StatePath holds (none when it is empty or the file does not exist).
func Open(c Config) (*Device, error) {
	if len(c.Capacity) == 0 {
		return nil, fmt.Errorf("sim: config: field \"capacity\" is empty")
	}
	if err := c.Capacity.Validate(); err != nil {
		return nil, fmt.Errorf("sim: config field \"capacity\": %w", err)
	}
	for _, r := range slices.Sorted(maps.Keys(c.Units)) {
		if _, ok := c.Capacity[r]; !ok {
			return nil, fmt.Errorf("sim: config field \"units\": resource %q is not in \"capacity\"", r)
		}
		if err := c.Units[r].Validate(); err != nil {
			return nil, fmt.Errorf("sim: config field \"units\" resource %q: %w", r, err)
		}
	}
	d := New(c.Capacity)
	d.statePath = c.StatePath
	if len(c.Units) > 0 {
		d.units = maps.Clone(c.Units)
	}
	if c.StatePath == "" {
		return d, nil
	}
	b, err := os.ReadFile(c.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sim: state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sim: state file %s: %w", c.StatePath, err)
	}
	for f, a := range st.Allocations {
		if err := a.Validate(); err != nil || a.Function != f {
			return nil, fmt.Errorf("sim: state file %s: allocation of %q is invalid (%v)", c.StatePath, f, err)
		}
		d.allocs[f] = a
	}
	return d, nil
}

// stateFile is what StatePath holds.
type stateFile struct {
	Allocations map[string]hal.Allocation `json:"allocations"`
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
	delay     time.Duration
	statePath string                    // "" keeps the state in memory only
	units     map[hal.Resource]hal.Unit // immutable after Open; nil: all continuous
}

// Event is one entry of the device's history.
type Event struct {
	Op     string // "apply" or "undo"
	Allocs []hal.Allocation
	Err    error
}

var (
	_ hal.Device    = (*Device)(nil)
	_ hal.Journaled = (*Device)(nil)
	_ hal.Meter     = (*Device)(nil)
	_ hal.Units     = (*Device)(nil)
)

// Units implements [hal.Units]: the units of [Config.Units] (none for a
// device made by [New]).
func (d *Device) Units() map[hal.Resource]hal.Unit { return d.units }

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
// fit the capacity, and records them. It changes nothing on error. Its
// Undo restores, for each function allocs named, the allocation it had
// before (or none).
func (d *Device) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	return d.apply(ctx, allocs, nil)
}

// ApplyJournaled implements [hal.Journaled]: it is Apply, and before it
// changes anything it journals the allocation each named function had.
func (d *Device) ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if journal == nil {
		return nil, errors.New("sim: apply: journal is nil")
	}
	return d.apply(ctx, allocs, journal)
}

// undoRecord is what ApplyJournaled journals: the allocation each function
// had before (nil: none).
type undoRecord struct {
	Version int                        `json:"v"`
	Device  string                     `json:"device"`
	Before  map[string]*hal.Allocation `json:"before"`
}

const recordVersion = 1

func (d *Device) apply(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
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
	before := map[string]*hal.Allocation{}
	for _, a := range allocs {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("sim: apply: %w", err)
		}
		if err := hal.CheckUnits(d.units, a); err != nil {
			return nil, fmt.Errorf("sim: apply: %w", err)
		}
		for _, v := range []hal.Vector{a.Guarantee, a.Limit} {
			for r := range v {
				if _, ok := d.capacity[r]; !ok {
					return nil, fmt.Errorf("sim: apply: function %q: unknown resource %q", a.Function, r)
				}
			}
		}
		if _, seen := before[a.Function]; !seen {
			before[a.Function] = nil
			if old, ok := d.allocs[a.Function]; ok {
				before[a.Function] = &old
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
	if journal != nil {
		rec, err := json.Marshal(undoRecord{Version: recordVersion, Device: "sim", Before: before})
		if err != nil {
			return nil, fmt.Errorf("sim: apply: %w", err)
		}
		if err := journal(rec); err != nil {
			return nil, fmt.Errorf("sim: apply: journal: %w", err)
		}
	}
	if err := d.setLocked(next); err != nil {
		return nil, fmt.Errorf("sim: apply: %w", err)
	}
	d.history = append(d.history, Event{Op: "apply", Allocs: slices.Clone(allocs)})
	return hal.Once(func(ctx context.Context) error { return d.restore(ctx, before) }), nil
}

// UndoRecord implements [hal.Journaled]: it gives each function of the
// record the allocation it had before the journaled Apply.
func (d *Device) UndoRecord(ctx context.Context, record []byte) error {
	before, err := decodeRecord(record)
	if err != nil {
		return err
	}
	return d.restore(ctx, before)
}

// decodeRecord reads a record ApplyJournaled wrote.
func decodeRecord(record []byte) (map[string]*hal.Allocation, error) {
	var rec undoRecord
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("sim: undo record: %w", err)
	}
	if dec.More() {
		return nil, errors.New("sim: undo record: data after the record")
	}
	if rec.Device != "sim" {
		return nil, fmt.Errorf("sim: undo record: written by device %q, not sim", rec.Device)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("sim: undo record: version %d, this driver reads %d", rec.Version, recordVersion)
	}
	for f, a := range rec.Before {
		if a == nil {
			continue
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("sim: undo record: function %q: %w", f, err)
		}
		if a.Function != f {
			return nil, fmt.Errorf("sim: undo record: allocation of %q names %q", f, a.Function)
		}
	}
	return rec.Before, nil
}

func (d *Device) restore(ctx context.Context, before map[string]*hal.Allocation) error {
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
	next := maps.Clone(d.allocs)
	for f, a := range before {
		if a == nil {
			delete(next, f)
			continue
		}
		next[f] = hal.Allocation{Function: a.Function, Guarantee: a.Guarantee.Clone(), Limit: a.Limit.Clone()}
	}
	if err := d.setLocked(next); err != nil {
		return fmt.Errorf("sim: undo: %w", err)
	}
	d.history = append(d.history, Event{Op: "undo"})
	return nil
}

// setLocked puts next in force, and in the state file when there is one.
func (d *Device) setLocked(next map[string]hal.Allocation) error {
	if d.statePath != "" {
		b, err := json.Marshal(stateFile{Allocations: next})
		if err != nil {
			return err
		}
		if err := durable.WriteFile(d.statePath, b); err != nil {
			return fmt.Errorf("state file: %w", err)
		}
	}
	d.allocs = next
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
