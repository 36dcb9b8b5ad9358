//go:build linux

package profile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

func TestMeterCountsCallsLatencyAndState(t *testing.T) {
	clock := &fakeClock{epoch}
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock.now }
	advance := func(d time.Duration) { mu.Lock(); clock.now = clock.now.Add(d); mu.Unlock() }
	m := profile.NewMeter(profile.MeterOptions{Clock: now})

	for _, d := range []time.Duration{10 * time.Millisecond, 30 * time.Millisecond} {
		done := m.Track("routes")
		advance(d)
		done()
		done() // a second call is harmless
	}
	m.Wrote("routes", 1000)
	m.Wrote("routes", -5)
	advance(time.Second - 40*time.Millisecond)

	s, err := m.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, "routes", s[0].Function)
	require.EqualValues(t, 2, s[0].Calls)
	require.Equal(t, 20*time.Millisecond, s[0].Latency)
	require.EqualValues(t, 1000, s[0].StateBytes)
	require.Equal(t, time.Second, s[0].Interval)
	require.Contains(t, s[0].Usage, hal.CPU)
	require.GreaterOrEqual(t, s[0].Usage[hal.CPU], 0.0)

	advance(time.Second)
	s, err = m.Collect(context.Background())
	require.NoError(t, err)
	require.Empty(t, s, "each Collect starts a new interval")
}

// TestMeterMeasuresThreadCPU: work that spins for a known CPU time is
// measured as that much CPU, however busy the rest of the process is.
func TestMeterMeasuresThreadCPU(t *testing.T) {
	m := profile.NewMeter(profile.MeterOptions{})
	_, err := m.Collect(context.Background())
	require.NoError(t, err)
	start := time.Now()
	spinFor := func(d time.Duration) time.Duration {
		defer m.Track("spin")()
		t0 := threadCPU()
		for threadCPU()-t0 < d {
		}
		return threadCPU() - t0
	}
	spent := spinFor(200*time.Millisecond) + spinFor(100*time.Millisecond)
	s, err := m.Collect(context.Background())
	require.NoError(t, err)
	elapsed := time.Since(start)
	require.Len(t, s, 1)
	got := s[0].Usage[hal.CPU] * s[0].Interval.Seconds()
	t.Logf("tracked %.3fs of thread CPU in %v, the spinner counted %.3fs", got, elapsed, spent.Seconds())
	require.InEpsilon(t, spent.Seconds(), got, 0.05)
	require.EqualValues(t, 2, s[0].Calls)
}

func TestMeterFeedsTheAnalyzer(t *testing.T) {
	m := profile.NewMeter(profile.MeterOptions{})
	an := mustNew(t, profile.Options{Collectors: []profile.Collector{m}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Track("handler")()
				m.Wrote("handler", 10)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, an.Sample(context.Background()))
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{{Name: "handler"}})
	require.NoError(t, err)
	require.Equal(t, 1, fc.Functions[0].Samples)
	require.Contains(t, fc.Functions[0].P95, hal.CPU)
}
