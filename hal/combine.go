package hal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// Combine joins devices that each own different resources (for example
// hal/linux for cpu and memory and an offload card for "nic.queue") into
// one Device. Capacity is the union of the devices' capacities and fails if
// two devices claim the same resource. Apply hands each device the part of
// every allocation that names its resources; if one device fails, those
// already applied are undone before Apply returns.
//
// An allocation naming a resource no device offers is refused with
// [ErrUnknownResource] before any device is asked. A device that panics in
// Apply has the devices before it undone, and the
// panic goes on its way.
//
// A combined device implements [Meter] when at least one of its devices
// does; usage is summed over the devices that measure. It implements
// [Journaled] when every one of its devices does: its record holds each
// device's record, and UndoRecord undoes them in reverse order. It always
// implements [Units]: the union of the units of the devices that report
// them (empty when none does; a resource two devices name, which Capacity
// refuses anyway, takes the first device's unit).
func Combine(devices ...Device) Device {
	c := &combined{devices: devices}
	for _, d := range devices {
		if _, ok := d.(Journaled); !ok {
			return c
		}
	}
	return &journaledCombined{c}
}

type combined struct {
	devices []Device
}

func (c *combined) Capacity(ctx context.Context) (Vector, error) {
	total := Vector{}
	owner := map[Resource]int{}
	for i, d := range c.devices {
		capacity, err := d.Capacity(ctx)
		if err != nil {
			return nil, fmt.Errorf("hal: device %d capacity: %w", i, err)
		}
		for r, q := range capacity {
			if j, dup := owner[r]; dup {
				return nil, fmt.Errorf("hal: resource %q is offered by devices %d and %d; combined devices must own disjoint resources", r, j, i)
			}
			owner[r] = i
			total[r] = q
		}
	}
	return total, nil
}

func (c *combined) Apply(ctx context.Context, allocs []Allocation) (Undo, error) {
	return c.apply(ctx, allocs, func(_ int, d Device, part []Allocation) (Undo, error) { return d.Apply(ctx, part) })
}

// apply hands each device its part through applyOne. If one fails or
// panics, the devices before it are undone (the panic then goes on).
func (c *combined) apply(ctx context.Context, allocs []Allocation, applyOne func(i int, d Device, part []Allocation) (Undo, error)) (_ Undo, err error) {
	var undos []Undo
	undoAll := func(ctx context.Context) error {
		var errs *multierror.Error
		for i := len(undos) - 1; i >= 0; i-- {
			errs = multierror.Append(errs, undos[i](ctx))
		}
		return errs.ErrorOrNil()
	}
	ok := false
	defer func() {
		if !ok && err == nil { // a device panicked
			_ = undoAll(context.WithoutCancel(ctx))
		}
	}()
	capacities := make([]Vector, len(c.devices))
	offered := map[Resource]bool{}
	for i, d := range c.devices {
		capacity, err := d.Capacity(ctx)
		if err != nil {
			ok = true
			return nil, fmt.Errorf("hal: device %d capacity: %w", i, err)
		}
		capacities[i] = capacity
		for r := range capacity {
			offered[r] = true
		}
	}
	for _, a := range allocs {
		for _, v := range []Vector{a.Guarantee, a.Limit} {
			for _, r := range v.Resources() {
				if !offered[r] {
					ok = true
					return nil, fmt.Errorf("hal: function %q resource %q: %w", a.Function, r, ErrUnknownResource)
				}
			}
		}
	}
	for i, d := range c.devices {
		part := restrict(allocs, capacities[i])
		if len(part) == 0 {
			continue
		}
		undo, err := applyOne(i, d, part)
		if err != nil {
			ok = true
			return nil, multierror.Append(fmt.Errorf("hal: device %d apply: %w", i, err), undoAll(ctx))
		}
		undos = append(undos, undo)
	}
	ok = true
	return once(undoAll), nil
}

// journaledCombined is a combined device whose devices are all Journaled.
type journaledCombined struct{ *combined }

// combinedRecord is a combined device's undo record: each device's own,
// by position (nil: that device was not changed).
type combinedRecord struct {
	Version int      `json:"v"`
	Parts   [][]byte `json:"parts"`
}

func (c *journaledCombined) ApplyJournaled(ctx context.Context, allocs []Allocation, journal func([]byte) error) (Undo, error) {
	rec := combinedRecord{Version: 1, Parts: make([][]byte, len(c.devices))}
	var mu sync.Mutex
	return c.apply(ctx, allocs, func(i int, d Device, part []Allocation) (Undo, error) {
		return d.(Journaled).ApplyJournaled(ctx, part, func(r []byte) error {
			mu.Lock()
			defer mu.Unlock()
			rec.Parts[i] = append([]byte(nil), r...)
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			return journal(b)
		})
	})
}

func (c *journaledCombined) UndoRecord(ctx context.Context, record []byte) error {
	var rec combinedRecord
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return fmt.Errorf("hal: combined undo record: %w", err)
	}
	if rec.Version != 1 {
		return fmt.Errorf("hal: combined undo record: version %d, this reads 1", rec.Version)
	}
	if len(rec.Parts) != len(c.devices) {
		return fmt.Errorf("hal: combined undo record: %d parts for %d devices (was the device combined differently?)", len(rec.Parts), len(c.devices))
	}
	var errs *multierror.Error
	for i := len(rec.Parts) - 1; i >= 0; i-- {
		part := rec.Parts[i]
		if part == nil {
			continue
		}
		if err := c.devices[i].(Journaled).UndoRecord(ctx, part); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("hal: device %d undo record: %w", i, err))
		}
	}
	return errs.ErrorOrNil()
}

// Units returns the union of the devices' units.
func (c *combined) Units() map[Resource]Unit {
	out := map[Resource]Unit{}
	for _, d := range c.devices {
		for r, u := range UnitsOf(d) {
			if _, dup := out[r]; !dup {
				out[r] = u
			}
		}
	}
	return out
}

func (c *combined) Usage(ctx context.Context, function string) (Vector, error) {
	total := Vector{}
	measured := false
	for _, d := range c.devices {
		m, ok := d.(Meter)
		if !ok {
			continue
		}
		u, err := m.Usage(ctx, function)
		if err != nil {
			return nil, err
		}
		measured = true
		total = total.Add(u)
	}
	if !measured {
		return nil, fmt.Errorf("hal: no combined device measures usage of %q: %w", function, ErrUnknownFunction)
	}
	return total, nil
}

// restrict keeps, of each allocation, the resources capacity names; an
// allocation left with none is dropped.
func restrict(allocs []Allocation, capacity Vector) []Allocation {
	var out []Allocation
	for _, a := range allocs {
		part := Allocation{Function: a.Function, Guarantee: Vector{}, Limit: Vector{}}
		for r, q := range a.Guarantee {
			if _, ok := capacity[r]; ok {
				part.Guarantee[r] = q
			}
		}
		for r, q := range a.Limit {
			if _, ok := capacity[r]; ok {
				part.Limit[r] = q
			}
		}
		if len(part.Guarantee) > 0 || len(part.Limit) > 0 {
			out = append(out, part)
		}
	}
	return out
}

// once makes an Undo idempotent: calls run u until one succeeds; after
// that they do nothing and return nil.
func once(u Undo) Undo {
	var (
		mu   sync.Mutex // serialises calls; guards done
		done bool
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return nil
		}
		err := u(ctx)
		done = err == nil
		return err
	}
}

// Once makes u idempotent and safe for concurrent calls: calls run u until
// one succeeds, so a failed undo can be retried; after a success they do
// nothing and return nil. Drivers use it to honour the [Undo] contract.
func Once(u Undo) Undo { return once(u) }
