package trace

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// WindowConfig configures [WindowPercentile]. Every field is taken as it
// is: a Factor of 1 adds nothing. [DefaultWindowConfig] is the rule "p95
// of the last 2 hours × 1.2".
type WindowConfig struct {
	Window     time.Duration // history kept; points older than this before the forecast are forgotten
	Percentile float64       // 0..1, nearest rank
	Factor     float64       // the percentile is multiplied by this
}

// DefaultWindowConfig returns p95 of the last 2 hours × 1.2.
func DefaultWindowConfig() WindowConfig {
	return WindowConfig{Window: 2 * time.Hour, Percentile: 0.95, Factor: 1.2}
}

// WindowPercentile is the moving-window percentile rule a user might set
// by hand: per resource, the nearest-rank percentile of the points seen in
// the last Window before the forecast, times Factor. It holds the points
// of one window. A WindowPercentile is used by one goroutine at a time.
type WindowPercentile struct {
	cfg    WindowConfig
	points []Point    // in time order, at most those within Window of the newest
	last   hal.Vector // the previous reservation, held while the window is empty
	buf    []float64
}

var _ Forecaster = (*WindowPercentile)(nil)

// NewWindowPercentile returns the rule with cfg, or an error wrapping
// [ErrBadConfig] naming the field out of range.
func NewWindowPercentile(cfg WindowConfig) (*WindowPercentile, error) {
	switch {
	case cfg.Window <= 0:
		return nil, fmt.Errorf("%w: WindowConfig.Window is %v, want a positive duration", ErrBadConfig, cfg.Window)
	case !(cfg.Percentile >= 0 && cfg.Percentile <= 1):
		return nil, fmt.Errorf("%w: WindowConfig.Percentile is %v, want 0 to 1", ErrBadConfig, cfg.Percentile)
	case !(cfg.Factor >= 0) || math.IsInf(cfg.Factor, 0):
		return nil, fmt.Errorf("%w: WindowConfig.Factor is %v, want a finite non-negative number", ErrBadConfig, cfg.Factor)
	}
	return &WindowPercentile{cfg: cfg}, nil
}

// Observe implements [Forecaster].
func (w *WindowPercentile) Observe(p Point) {
	w.points = append(w.points, p)
	w.forget(p.Time)
}

// forget drops the points older than Window before now.
func (w *WindowPercentile) forget(now time.Time) {
	cut := 0
	for cut < len(w.points) && now.Sub(w.points[cut].Time) >= w.cfg.Window {
		cut++
	}
	if cut > 0 {
		w.points = append(w.points[:0], w.points[cut:]...)
	}
}

// Reserve implements [Forecaster]: per resource, the percentile of the
// points in [at−Window, at) times Factor; a resource with no point there
// keeps its previous reservation, as a controller keeps the limits it set.
func (w *WindowPercentile) Reserve(_ context.Context, at time.Time, _ time.Duration) (hal.Vector, error) {
	w.forget(at)
	out := w.last.Clone()
	if out == nil {
		out = hal.Vector{}
	}
	for _, r := range []hal.Resource{hal.CPU, hal.Memory, hal.IO} {
		w.buf = w.buf[:0]
		for _, p := range w.points {
			if x, ok := p.Usage[r]; ok && p.Time.Before(at) {
				w.buf = append(w.buf, x)
			}
		}
		if len(w.buf) == 0 {
			continue
		}
		out[r] = nearestRank(w.buf, w.cfg.Percentile) * w.cfg.Factor
	}
	w.last = out
	return out.Clone(), nil
}

// nearestRank returns the ⌈p·n⌉-th smallest of xs (the smallest for p = 0);
// it reorders xs.
func nearestRank(xs []float64, p float64) float64 {
	slices.Sort(xs)
	k := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[min(max(k, 0), len(xs)-1)]
}
