package linux

import (
	"context"
	"errors"

	"github.com/updraft-dev/updraft/hal"
)

// Smallest limits the driver enforces; below them the kernel refuses the
// value or the function cannot run at all.
const (
	MinCPULimit    = 0.01    // cores: a CFS quota of 1ms per 100ms period
	MinMemoryLimit = 1 << 20 // bytes
	CPUPeriod      = 100000  // CFS period in microseconds (the kernel default)
)

func (d *Device) apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	return nil, errors.New("linux: apply: not implemented yet")
}

// Usage returns function's current CPU use in cores and memory in bytes.
func (d *Device) Usage(ctx context.Context, function string) (hal.Vector, error) {
	return nil, errors.New("linux: usage: not implemented yet")
}
