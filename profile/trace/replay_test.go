package trace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

// hourlyBursts is one point every 5 minutes for three days: 1 core,
// except 2 cores in the first 5 minutes of every hour.
func hourlyBursts() trace.Series {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := trace.Series{Name: "bursts"}
	for i := range 3 * 24 * 12 {
		u := 1.0
		if i%12 == 0 {
			u = 2
		}
		s.Points = append(s.Points, trace.Point{Time: start.Add(time.Duration(i) * trace.Step), Usage: hal.Vector{hal.CPU: u}})
	}
	return s
}

func TestReplayScoresWindows(t *testing.T) {
	s := hourlyBursts()
	cpuOnly := trace.ReplayOptions{Resources: []hal.Resource{hal.CPU}}
	score, err := trace.Replay(context.Background(), s, fixedForecaster{hal.CPU: 1.5}, cpuOnly)
	require.NoError(t, err)
	cpu := score[hal.CPU]
	require.Equal(t, 2*24*12, cpu.Points, "the first day is warm-up")
	require.Equal(t, 2*24, cpu.Violations)
	require.InDelta(t, 1.0/12, cpu.ViolationRate(), 1e-9)
	// Gross slack: 0.5 over each of the 11 points at 1 core; the bursts'
	// shortfall of 0.5 is not netted against it.
	used := 2*24*11*1.0 + 2*24*2.0
	require.InDelta(t, 2*24*11*0.5/used, cpu.Slack(), 1e-9)
	require.InDelta(t, 2*24*0.5/used, cpu.ShortShare(), 1e-9)
	require.InDelta(t, 0.25, cpu.MeanOverrun(), 1e-9, "each burst: (2 − 1.5)/2 of its use uncovered")

	vpa, err := trace.NewVPA(trace.DefaultVPAConfig())
	require.NoError(t, err)
	vs, err := trace.Replay(context.Background(), s, vpa, cpuOnly)
	require.NoError(t, err)
	// p90 of a distribution with 1/12 of points at 2 is the end of 1's
	// bucket; +15% stays below 2.
	require.InDelta(t, 1.0/12, vs[hal.CPU].ViolationRate(), 1e-9)

	model, err := trace.NewModel(trace.ModelOptions{Quantile: 0.99})
	require.NoError(t, err)
	ms, err := trace.Replay(context.Background(), s, model, cpuOnly)
	require.NoError(t, err)
	require.Less(t, ms[hal.CPU].ViolationRate(), vs[hal.CPU].ViolationRate(), "p99 covers the hourly burst")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = trace.Replay(ctx, s, fixedForecaster{}, trace.ReplayOptions{})
	require.ErrorIs(t, err, context.Canceled)

	_, err = trace.Replay(context.Background(), s, failing{}, trace.ReplayOptions{})
	require.ErrorContains(t, err, "window at 2026-01-02T00:00:00Z")

	_, err = trace.NewModel(trace.ModelOptions{Quantile: 0.9})
	require.ErrorIs(t, err, trace.ErrBadConfig)
}

// recorder remembers what it observed before each reservation.
type recorder struct {
	seen   []time.Time
	before map[time.Time]time.Time // window start → newest point observed then
}

func (r *recorder) Observe(p trace.Point) { r.seen = append(r.seen, p.Time) }
func (r *recorder) Reserve(_ context.Context, at time.Time, _ time.Duration) (hal.Vector, error) {
	newest := time.Time{}
	if len(r.seen) > 0 {
		newest = r.seen[len(r.seen)-1]
	}
	r.before[at] = newest
	return hal.Vector{}, nil
}

func TestReplayNeverShowsTheFuture(t *testing.T) {
	s := hourlyBursts()
	r := &recorder{before: map[time.Time]time.Time{}}
	_, err := trace.Replay(context.Background(), s, r, trace.ReplayOptions{})
	require.NoError(t, err)
	require.Len(t, r.before, 48)
	for at, newest := range r.before {
		require.True(t, newest.Before(at), "window at %v saw a point at %v", at, newest)
		require.Equal(t, at.Add(-trace.Step), newest, "and every point before it")
	}
}

type fixedForecaster hal.Vector

func (f fixedForecaster) Observe(trace.Point) {}
func (f fixedForecaster) Reserve(context.Context, time.Time, time.Duration) (hal.Vector, error) {
	return hal.Vector(f), nil
}

type failing struct{}

func (failing) Observe(trace.Point) {}
func (failing) Reserve(context.Context, time.Time, time.Duration) (hal.Vector, error) {
	return nil, errors.New("no forecast")
}

func TestEvaluateSpreadAndAim(t *testing.T) {
	s := hourlyBursts()
	quiet := trace.Series{Name: "quiet", Points: append([]trace.Point(nil), s.Points...)}
	for i := range quiet.Points {
		quiet.Points[i].Usage = hal.Vector{hal.CPU: 1}
	}
	methods := []trace.Method{
		{Name: "tight", New: func() (trace.Forecaster, error) { return fixedForecaster{hal.CPU: 1.5}, nil }},
		{Name: "loose", New: func() (trace.Forecaster, error) { return fixedForecaster{hal.CPU: 3}, nil }},
	}
	ev, err := trace.Evaluate(context.Background(), []trace.Series{s, quiet}, methods, trace.ReplayOptions{Resources: []hal.Resource{hal.CPU}})
	require.NoError(t, err)
	require.Equal(t, 1, ev.Method("loose"))
	sp := ev.Spread(0, hal.CPU)
	require.Equal(t, 2, sp.Series)
	require.Equal(t, "bursts", sp.Worst)
	require.InDelta(t, 1.0/12, sp.Max, 1e-12)
	require.InDelta(t, 1.0/24, sp.ViolationsP50, 1e-12, "the median of 1/12 and 0")
	require.Empty(t, ev.Spread(1, hal.CPU).Worst, "no violation: no worst series")

	aim := ev.Aim(0, 1)
	require.Len(t, aim, 1)
	require.False(t, aim[0].ViolationsMet(), "tight violates, loose does not")
	require.True(t, aim[0].SlackMet(), "tight reserves well under 60%% of loose's slack")
	require.Contains(t, aim[0].String(), "NOT met: more violations")

	_, err = trace.Evaluate(context.Background(), []trace.Series{s}, []trace.Method{{Name: "broken", New: func() (trace.Forecaster, error) {
		return nil, errors.New("cannot build")
	}}}, trace.ReplayOptions{})
	require.ErrorContains(t, err, "method broken: cannot build")
}
