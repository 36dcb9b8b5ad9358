package hal

import (
	"context"
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
// A combined device implements [Meter] when at least one of its devices
// does; usage is summed over the devices that measure.
func Combine(devices ...Device) Device {
	return &combined{devices: devices}
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
	var undos []Undo
	undoAll := func(ctx context.Context) error {
		var errs *multierror.Error
		for i := len(undos) - 1; i >= 0; i-- {
			errs = multierror.Append(errs, undos[i](ctx))
		}
		return errs.ErrorOrNil()
	}
	for i, d := range c.devices {
		capacity, err := d.Capacity(ctx)
		if err != nil {
			return nil, multierror.Append(fmt.Errorf("hal: device %d capacity: %w", i, err), undoAll(ctx))
		}
		part := restrict(allocs, capacity)
		if len(part) == 0 {
			continue
		}
		undo, err := d.Apply(ctx, part)
		if err != nil {
			return nil, multierror.Append(fmt.Errorf("hal: device %d apply: %w", i, err), undoAll(ctx))
		}
		undos = append(undos, undo)
	}
	return once(undoAll), nil
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
