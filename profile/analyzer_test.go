package profile_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

var epoch = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func TestNewValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		opts profile.Options
		want string
	}{
		{profile.Options{Collectors: []profile.Collector{nil}}, "Collectors[0] is nil"},
		{profile.Options{HalfLife: -time.Second}, "Options.HalfLife is negative"},
		{profile.Options{MinSamples: -1}, "Options.MinSamples is negative"},
		{profile.Options{EvidenceBuckets: 2}, "EvidenceBuckets is 2"},
		{profile.Options{EvidenceBuckets: 1 << 20}, "want 4 to 10080"},
		{profile.Options{LevelTau: -1, HalfLife: -1}, "Options.LevelTau is negative"},
		{profile.Options{OverrunCost: map[hal.Resource]float64{hal.Memory: math.NaN()}}, `OverrunCost["memory"]`},
	} {
		_, err := profile.New(tc.opts)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestForecastWithoutHistory(t *testing.T) {
	an := mustNew(t, profile.Options{Clock: (&fakeClock{epoch}).Now})
	fc, err := an.Forecast(context.Background(), 10*time.Minute, []profile.Function{{Name: "new"}})
	require.NoError(t, err)
	require.Equal(t, epoch, fc.At)
	require.Equal(t, 10*time.Minute, fc.Window)
	f := fc.Functions[0]
	require.Zero(t, f.Confidence)
	require.Zero(t, f.Samples)
	require.True(t, f.P95.IsZero())
	require.False(t, f.Critical)
	require.Contains(t, f.Reasons[0], "never observed")
}

func TestLittleHistoryGivesAWideInterval(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	for i, cpu := range []float64{1.0, 1.2, 0.9, 1.1, 1.0} {
		an.Observe(profile.Sample{Function: "f", Time: epoch.Add(time.Duration(i) * time.Minute), Usage: hal.Vector{hal.CPU: cpu}})
	}
	clock.now = epoch.Add(5 * time.Minute)
	fc, err := an.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "f"}})
	require.NoError(t, err)
	f := fc.Functions[0]
	require.Equal(t, 5, f.Samples)
	require.InDelta(t, 1.04, f.P50[hal.CPU], 1e-9, "p50 is the mean")
	// Student's t with 4 degrees of freedom: 2.132 and 3.747 standard
	// deviations (0.1140) times √(1+1/5) above the mean.
	require.InDelta(t, 1.04+2.1318*0.11402*math.Sqrt(1.2), f.P95[hal.CPU], 1e-3)
	require.InDelta(t, 1.04+3.7469*0.11402*math.Sqrt(1.2), f.P99[hal.CPU], 1e-3)
	require.Less(t, f.Confidence, 0.2)
	require.Contains(t, f.Basis[0], "only 5 observations")

	one := mustNew(t, profile.Options{Clock: clock.Now})
	one.Observe(profile.Sample{Function: "f", Time: epoch, Usage: hal.Vector{hal.Memory: 100}})
	fc, err = one.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "f"}})
	require.NoError(t, err)
	require.Equal(t, hal.Vector{hal.Memory: 100}, fc.Functions[0].P50)
	require.Equal(t, hal.Vector{hal.Memory: 400}, fc.Functions[0].P99)
}

func TestForecastCoversAStationarySeries(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 3 * 24 * 60 // three days of minutes
	for i := range n {
		clock.now = epoch.Add(time.Duration(i) * time.Minute)
		an.Observe(profile.Sample{Function: "f", Time: clock.now, Usage: hal.Vector{
			hal.CPU:    2 + rng.NormFloat64()*0.2,
			hal.Memory: 1 << 30,
		}})
	}
	fc, err := an.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "f"}})
	require.NoError(t, err)
	f := fc.Functions[0]
	require.Equal(t, n, f.Samples)
	require.Greater(t, f.Confidence, 0.9)
	// N(2, 0.2): p50 = 2, p95 = 2.33, p99 = 2.47. Buckets are up to 10%
	// wide and the forecast covers the window's highest level, so the
	// upper quantiles may sit somewhat above the truth, never below it.
	require.InEpsilon(t, 2.0, f.P50[hal.CPU], 0.10)
	require.GreaterOrEqual(t, f.P95[hal.CPU], 2.33*0.97)
	require.LessOrEqual(t, f.P95[hal.CPU], 2.33*1.2)
	require.GreaterOrEqual(t, f.P99[hal.CPU], 2.47*0.97)
	require.LessOrEqual(t, f.P99[hal.CPU], 2.47*1.2)
	require.LessOrEqual(t, f.P50[hal.CPU], f.P95[hal.CPU])
	require.LessOrEqual(t, f.P95[hal.CPU], f.P99[hal.CPU])
	// Constant memory: P95 keeps the default memory headroom above it.
	require.InEpsilon(t, float64(1<<30)*(1+profile.DefaultMemoryHeadroom), f.P95[hal.Memory], 0.02)
}

// TestForecastFollowsADailyPattern: a function busy from 12:00 to 14:00
// every day and idle otherwise. Forecasting at 11:00 for the next hour
// must anticipate the busy hours better than its overall distribution.
func TestForecastFollowsADailyPattern(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	usage := func(t time.Time) float64 {
		if h := t.Hour(); h >= 12 && h < 14 {
			return 4
		}
		return 0.5
	}
	for i := range 6 * 24 * 12 { // six days of five-minute points
		clock.now = epoch.Add(time.Duration(i) * 5 * time.Minute)
		an.Observe(profile.Sample{Function: "batch", Time: clock.now, Usage: hal.Vector{hal.CPU: usage(clock.now)}})
	}
	ctx := context.Background()
	day := epoch.Add(6 * 24 * time.Hour)
	observeUntil := func(end time.Time) {
		for clock.now.Before(end) {
			clock.now = clock.now.Add(5 * time.Minute)
			an.Observe(profile.Sample{Function: "batch", Time: clock.now, Usage: hal.Vector{hal.CPU: usage(clock.now)}})
		}
	}
	observeUntil(day.Add(12 * time.Hour))
	busy, err := an.Forecast(ctx, time.Hour, []profile.Function{{Name: "batch"}})
	require.NoError(t, err)
	require.GreaterOrEqual(t, busy.Functions[0].P95[hal.CPU], 4.0, "the 12:00 window is a busy one: %v", busy.Functions[0].Basis)
	observeUntil(day.Add(20 * time.Hour))
	quiet, err := an.Forecast(ctx, time.Hour, []profile.Function{{Name: "batch"}})
	require.NoError(t, err)
	require.Less(t, quiet.Functions[0].P95[hal.CPU], 4.0, "the 20:00 window is quiet: %v", quiet.Functions[0].Basis)
}

func TestObserveDropsBadSamples(t *testing.T) {
	an := mustNew(t, profile.Options{})
	an.Observe(
		profile.Sample{Function: "", Time: epoch},
		profile.Sample{Function: "f"},
		profile.Sample{Function: "f", Time: epoch, Usage: hal.Vector{hal.CPU: -1}},
		profile.Sample{Function: "f", Time: epoch, Usage: hal.Vector{hal.CPU: math.NaN()}},
		profile.Sample{Function: "f", Time: epoch, Calls: -3},
		profile.Sample{Function: "f", Time: epoch, Usage: hal.Vector{hal.CPU: 1}},
	)
	require.EqualValues(t, 5, an.Dropped())
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{{Name: "f"}})
	require.NoError(t, err)
	require.Equal(t, 1, fc.Functions[0].Samples)

	capped := mustNew(t, profile.Options{MaxFunctions: 1})
	capped.Observe(profile.Sample{Function: "a", Time: epoch}, profile.Sample{Function: "b", Time: epoch})
	require.EqualValues(t, 1, capped.Dropped())
}

// sliceCollector is an in-memory Collector returning fixed samples or an error.
type sliceCollector struct {
	samples []profile.Sample
	err     error
}

func (c sliceCollector) Collect(context.Context) ([]profile.Sample, error) { return c.samples, c.err }

func TestSampleCollectsFromEveryCollector(t *testing.T) {
	boom1, boom2 := errors.New("boom one"), errors.New("boom two")
	an := mustNew(t, profile.Options{Collectors: []profile.Collector{
		sliceCollector{err: boom1},
		sliceCollector{samples: []profile.Sample{{Function: "a", Time: epoch, Usage: hal.Vector{hal.CPU: 1}}}},
		sliceCollector{samples: []profile.Sample{{Function: "b", Time: epoch, Usage: hal.Vector{hal.CPU: 1}}}, err: boom2},
	}})
	err := an.Sample(context.Background())
	require.ErrorIs(t, err, boom1)
	require.ErrorIs(t, err, boom2)
	var merr *multierror.Error
	require.ErrorAs(t, err, &merr)
	require.Len(t, merr.Errors, 2)
	require.ErrorContains(t, err, "collector #0")
	require.ErrorContains(t, err, "collector #2")
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{{Name: "a"}, {Name: "b"}})
	require.NoError(t, err)
	require.Equal(t, 1, fc.Functions[0].Samples)
	require.Equal(t, 1, fc.Functions[1].Samples, "samples returned beside an error are kept")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, an.Sample(ctx), context.Canceled)
}

func TestAnalyzerConcurrentUse(t *testing.T) {
	an := mustNew(t, profile.Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			an.Observe(profile.Sample{Function: "f", Time: epoch.Add(time.Duration(i) * time.Second), Usage: hal.Vector{hal.CPU: 1}})
		}
	}()
	for range 50 {
		_, err := an.Forecast(context.Background(), time.Minute, []profile.Function{{Name: "f"}})
		require.NoError(t, err)
	}
	<-done
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{{Name: "f"}})
	require.NoError(t, err)
	require.Equal(t, 2000, fc.Functions[0].Samples)
}

func TestAnalyzerCollector(t *testing.T) {
	an := mustNew(t, profile.Options{})
	an.Observe(profile.Sample{Function: "a", Time: epoch}, profile.Sample{Function: "b", Time: epoch}, profile.Sample{Function: ""})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(an.Collector()))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[f.GetName()] = c.GetValue()
		} else {
			got[f.GetName()] = m.GetGauge().GetValue()
		}
	}
	require.Equal(t, map[string]float64{
		"updraft_profile_functions":              2,
		"updraft_profile_samples_dropped_total":  1,
		"updraft_profile_samples_observed_total": 2,
	}, got)
}

func TestCollectorFunc(t *testing.T) {
	calls := 0
	c := profile.CollectorFunc(func(context.Context) ([]profile.Sample, error) {
		calls++
		return []profile.Sample{{Function: "f", Time: epoch, Usage: hal.Vector{hal.CPU: 1}}}, nil
	})
	an := mustNew(t, profile.Options{Collectors: []profile.Collector{c}})
	require.NoError(t, an.Sample(context.Background()))
	require.Equal(t, 1, calls)
}
