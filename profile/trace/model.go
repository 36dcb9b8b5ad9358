package trace

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

// ModelOptions configure [Model].
type ModelOptions struct {
	// Quantile picks the forecast reserved: 0.5, 0.95 or 0.99; zero means
	// 0.95, the reservation the profile package recommends holding.
	Quantile float64
	// Analyzer options; Clock is set by the Model.
	Analyzer profile.Options
}

// Model is a [Forecaster] backed by a [profile.Analyzer] for one function.
// A Model is used by one goroutine at a time.
type Model struct {
	an       *profile.Analyzer
	now      time.Time // the Analyzer's clock; read and written by Replay's goroutine only
	quantile float64
}

var _ Forecaster = (*Model)(nil)

const modelFunction = "trace"

// NewModel returns a Model, or an error wrapping [ErrBadConfig] for an
// unsupported quantile, or the Analyzer's error for bad Analyzer options.
func NewModel(opts ModelOptions) (*Model, error) {
	m := &Model{quantile: opts.Quantile}
	if m.quantile == 0 {
		m.quantile = 0.95
	}
	if !slices.Contains([]float64{0.5, 0.95, 0.99}, m.quantile) {
		return nil, fmt.Errorf("%w: model quantile %v: want 0.5, 0.95 or 0.99", ErrBadConfig, m.quantile)
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
