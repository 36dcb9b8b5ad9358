//go:build !linux

package linux

import (
	"context"
	"fmt"

	"github.com/updraft-dev/updraft/hal"
)

// Device is a Linux host's CPUs, memory and block I/O partitioned with
// cgroups. On other systems it cannot be created: [New] checks the
// configuration and returns [ErrNotSupported], so code that mentions the
// driver still builds everywhere.
type Device struct{}

var (
	_ hal.Device = (*Device)(nil)
	_ hal.Meter  = (*Device)(nil)
)

// New checks cfg and returns an error: one naming the field at fault, or
// [ErrNotSupported].
func New(cfg Config) (*Device, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}

// Capacity returns [ErrNotSupported].
func (d *Device) Capacity(context.Context) (hal.Vector, error) { return nil, ErrNotSupported }

// Apply returns [ErrNotSupported].
func (d *Device) Apply(context.Context, []hal.Allocation) (hal.Undo, error) {
	return nil, ErrNotSupported
}

// Usage returns [ErrNotSupported].
func (d *Device) Usage(_ context.Context, function string) (hal.Vector, error) {
	return nil, fmt.Errorf("linux: usage of %q: %w", function, ErrNotSupported)
}
