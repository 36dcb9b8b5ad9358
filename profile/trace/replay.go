package trace

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
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

// Score is the outcome of a replay, per resource.
type Score map[hal.Resource]*ResourceScore

// ResourceScore accumulates the points of one resource.
type ResourceScore struct {
	Points     int     // scored points
	Violations int     // points where use exceeded the reservation
	Used       float64 // sum of use over scored points
	Reserved   float64 // sum of reservations over scored points
}

// Slack is reserved minus used, over used (0.25 = 25% more reserved than
// used); NaN when nothing was used.
func (r *ResourceScore) Slack() float64 {
	if r.Used == 0 {
		return math.NaN()
	}
	return (r.Reserved - r.Used) / r.Used
}

// ViolationRate is the share of scored points where use exceeded the
// reservation.
func (r *ResourceScore) ViolationRate() float64 {
	if r.Points == 0 {
		return math.NaN()
	}
	return float64(r.Violations) / float64(r.Points)
}

// Add accumulates o into s.
func (s Score) Add(o Score) {
	for res, r := range o {
		t := s[res]
		if t == nil {
			t = &ResourceScore{}
			s[res] = t
		}
		t.Points += r.Points
		t.Violations += r.Violations
		t.Used += r.Used
		t.Reserved += r.Reserved
	}
}

// Slack is the mean over resources of each resource's pooled slack
// (resources have different units, so their sums are not added).
func (s Score) Slack() float64 {
	sum, n := 0.0, 0
	for _, r := range s {
		if sl := r.Slack(); !math.IsNaN(sl) {
			sum += sl
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// ViolationRate is the share of violating points over every resource's
// scored points.
func (s Score) ViolationRate() float64 {
	v, p := 0, 0
	for _, r := range s {
		v += r.Violations
		p += r.Points
	}
	if p == 0 {
		return math.NaN()
	}
	return float64(v) / float64(p)
}

// Replay walks s in windows: before each window it asks f for a
// reservation from the history so far, scores the window's points against
// it (after the warm-up), then lets f observe them. It returns ctx.Err()
// if ctx is done, and f's error naming the series and window.
func Replay(ctx context.Context, s Series, f Forecaster, opts ReplayOptions) (Score, error) {
	window := opts.Window
	if window <= 0 {
		window = time.Hour
	}
	warmup := opts.Warmup
	if warmup <= 0 {
		warmup = 24 * time.Hour
	}
	resources := opts.Resources
	if len(resources) == 0 {
		resources = []hal.Resource{hal.CPU, hal.Memory}
	}
	score := Score{}
	for _, r := range resources {
		score[r] = &ResourceScore{}
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
		k := s.Points[i].Time.Sub(start) / window
		at := start.Add(k * window)
		end := at.Add(window)
		j := i
		for j < len(s.Points) && s.Points[j].Time.Before(end) {
			j++
		}
		if at.Sub(start) >= warmup {
			res, err := f.Reserve(ctx, at, window)
			if err != nil {
				return score, fmt.Errorf("trace: replay %s, window at %s: %w", s.Name, at.Format(time.RFC3339), err)
			}
			for _, p := range s.Points[i:j] {
				for _, r := range resources {
					used, ok := p.Usage[r]
					if !ok {
						continue
					}
					rs := score[r]
					rs.Points++
					rs.Used += used
					rs.Reserved += res[r]
					if used > res[r] {
						rs.Violations++
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

// ModelOptions configure [Model].
type ModelOptions struct {
	// Quantile picks the forecast reserved: 0.5, 0.95 or 0.99; default 0.95.
	Quantile float64
	// Analyzer options; Clock is set by the Model.
	Analyzer profile.Options
}

// Model is a [Forecaster] backed by a [profile.Analyzer] for one function.
type Model struct {
	an       *profile.Analyzer
	now      time.Time // the Analyzer's clock; read and written by Replay's goroutine only
	quantile float64
}

const modelFunction = "trace"

// NewModel returns a Model, or an error for an unsupported quantile or
// bad Analyzer options.
func NewModel(opts ModelOptions) (*Model, error) {
	m := &Model{quantile: opts.Quantile}
	if m.quantile == 0 {
		m.quantile = 0.95
	}
	if !slices.Contains([]float64{0.5, 0.95, 0.99}, m.quantile) {
		return nil, fmt.Errorf("trace: model quantile %v: want 0.5, 0.95 or 0.99", m.quantile)
	}
	ao := opts.Analyzer
	ao.Clock = func() time.Time { return m.now }
	an, err := profile.New(ao)
	if err != nil {
		return nil, fmt.Errorf("trace: model: %w", err)
	}
	m.an = an
	return m, nil
}

// Observe implements [Forecaster].
func (m *Model) Observe(p Point) {
	m.an.Observe(profile.Sample{Function: modelFunction, Time: p.Time, Usage: p.Usage, Interval: Step})
}

// Reserve implements [Forecaster].
func (m *Model) Reserve(ctx context.Context, at time.Time, window time.Duration) (hal.Vector, error) {
	m.now = at
	fc, err := m.an.Forecast(ctx, window, []profile.Function{{Name: modelFunction}})
	if err != nil {
		return nil, err
	}
	ff := fc.Functions[0]
	switch m.quantile {
	case 0.5:
		return ff.P50, nil
	case 0.99:
		return ff.P99, nil
	default:
		return ff.P95, nil
	}
}
