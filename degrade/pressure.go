package degrade

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// PressureSource reports how much the machine is short of resources, as the
// percentage of recent time (0-100) some tasks were stalled waiting for CPU,
// memory or I/O. [PSI] reads it from Linux pressure stall information;
// [StaticPressure] is the in-memory implementation for tests and hosts that
// measure pressure their own way.
type PressureSource interface {
	// Pressure returns the current stall percentage, 0-100.
	Pressure(ctx context.Context) (percent float64, err error)
}

var _ PressureSource = (*StaticPressure)(nil)

// StaticPressure is an in-memory [PressureSource] that reports whatever was
// last stored. The zero value reports 0; safe for concurrent use.
type StaticPressure struct {
	bits atomic.Uint64 // math.Float64bits of the percentage
}

// Set stores the percentage Pressure will report.
func (s *StaticPressure) Set(percent float64) { s.bits.Store(math.Float64bits(percent)) }

// Pressure returns the stored percentage.
func (s *StaticPressure) Pressure(ctx context.Context) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("degrade: static pressure: %w", err)
	}
	return math.Float64frombits(s.bits.Load()), nil
}

// ObservePressure applies a pressure percentage (0-100) to every adaptive
// limit now. [Controller.Run] calls it for each reading of
// Options.Pressure; hosts with their own measurement may call it directly.
func (c *Controller) ObservePressure(percent float64) {
	f := c.adaptive.pressureFactor(percent)
	if c.factor.load() == f {
		return
	}
	c.factor.store(f)
	for _, fn := range *c.fns.Load() {
		if w := fn.win.Load(); w != nil && w.adaptive != nil {
			w.adaptive.repressure()
		}
	}
}

// PressureFactor returns the share of adaptive limits currently kept under
// pressure, in [0, 1] (1 = no pressure).
func (c *Controller) PressureFactor() float64 { return c.factor.load() }

// Run reads Options.Pressure every Options.PressureInterval and applies it
// with [Controller.ObservePressure], until ctx is done; it then returns
// ctx.Err(). The caller owns the goroutine Run blocks. Without a pressure
// source Run returns an error at once. A failed reading is logged and
// leaves the last factor in force.
func (c *Controller) Run(ctx context.Context) error {
	if c.pressure == nil {
		return fmt.Errorf("degrade: Run: Options.Pressure is nil")
	}
	tick := time.NewTicker(c.pressureEvery)
	defer tick.Stop()
	for {
		if percent, err := c.pressure.Pressure(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn("degrade: reading pressure failed", "err", err)
		} else {
			c.ObservePressure(percent)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
