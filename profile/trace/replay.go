package trace

import (
	"context"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// Forecaster is anything that learns from past points and reserves
// resources for a coming window. Replay calls it from one goroutine.
type Forecaster interface {
	// Observe learns one point; points arrive in time order.
	Observe(p Point)
	// Reserve returns what to reserve per resource for [at, at+window).
	Reserve(ctx context.Context, at time.Time, window time.Duration) (hal.Vector, error)
}

// ReplayOptions configure [Replay]. Zero fields mean the defaults.
type ReplayOptions struct {
	Window    time.Duration  // length of each forecast window; default one hour
	Warmup    time.Duration  // history before the first scored window; default 24 hours
	Resources []hal.Resource // resources scored; default CPU and memory
}

func (o ReplayOptions) withDefaults() ReplayOptions {
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.Warmup <= 0 {
		o.Warmup = 24 * time.Hour
	}
	if len(o.Resources) == 0 {
		o.Resources = []hal.Resource{hal.CPU, hal.Memory}
	}
	return o
}

// Replay walks s in windows aligned to its first point: before each
// window it asks f for a reservation from the history so far (f has
// observed every point before the window and none after), scores the
// window's points against it once the warm-up is over, then lets f observe
// them. It returns ctx.Err() if ctx is done, and f's error naming the
// series and window.
func Replay(ctx context.Context, s Series, f Forecaster, opts ReplayOptions) (Score, error) {
	opts = opts.withDefaults()
	score := Score{}
	for _, r := range opts.Resources {
		score[r] = ResourceScore{}
	}
	if len(s.Points) == 0 {
		return score, nil
	}
	start := s.Points[0].Time
	i := 0
	for i < len(s.Points) {
		if err := ctx.Err(); err != nil {
			return score, fmt.Errorf("trace: replay %s: %w", s.Name, err)
		}
		// The window holding point i, aligned to the series start.
		k := s.Points[i].Time.Sub(start) / opts.Window
		at := start.Add(k * opts.Window)
		end := at.Add(opts.Window)
		j := i
		for j < len(s.Points) && s.Points[j].Time.Before(end) {
			j++
		}
		if at.Sub(start) >= opts.Warmup {
			res, err := f.Reserve(ctx, at, opts.Window)
			if err != nil {
				return score, fmt.Errorf("trace: replay %s, window at %s: %w", s.Name, at.Format(time.RFC3339), err)
			}
			for _, p := range s.Points[i:j] {
				for _, r := range opts.Resources {
					if used, ok := p.Usage[r]; ok {
						rs := score[r]
						rs.add(used, res[r])
						score[r] = rs
					}
				}
			}
		}
		for _, p := range s.Points[i:j] {
			f.Observe(p)
		}
		i = j
	}
	return score, nil
}
