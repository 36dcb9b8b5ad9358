package profile_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

// observeHours feeds n functions a sample of CPU, memory and I/O every 5
// minutes for the given hours, so every part of their models exists.
func observeHours(an *profile.Analyzer, n, hours int) {
	for i := range hours * 12 {
		at := epoch.Add(time.Duration(i) * 5 * time.Minute)
		for f := range n {
			an.Observe(profile.Sample{Function: fmt.Sprint("f", f), Time: at,
				Usage: hal.Vector{hal.CPU: 1 + float64(i%7), hal.Memory: 1e9 + float64(i%5)*1e7, hal.IO: 1e6}})
		}
	}
}

// TestModelMemoryIsBoundedPerFunction measures the heap a function with
// three resources holds once every part of its model exists, and that it
// does not grow as observations continue.
func TestModelMemoryIsBoundedPerFunction(t *testing.T) {
	const n = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	an := mustNew(t, profile.Options{})
	observeHours(an, n, 3)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFunction := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f KiB per function with three resources", perFunction/1024)
	require.Less(t, perFunction, 64.0*1024, "the doc promises under 64 KiB")
	require.Greater(t, perFunction, 8.0*1024, "the measurement sees the model")

	// Five more days of observations: the model does not grow.
	for i := range 5 * 24 * 12 {
		at := epoch.Add(3*time.Hour + time.Duration(i)*5*time.Minute)
		for f := range n {
			an.Observe(profile.Sample{Function: fmt.Sprint("f", f), Time: at, Usage: hal.Vector{hal.CPU: 2, hal.Memory: 1e9, hal.IO: 1e6}})
		}
	}
	var later runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&later)
	grown := (float64(later.HeapAlloc) - float64(after.HeapAlloc)) / n
	t.Logf("%.2f KiB per function after five more days", grown/1024)
	require.Less(t, grown, 1024.0, "the model grew with observations")
	runtime.KeepAlive(an)
}

// TestMemoryForecastKeepsHeadroom checks the memory price and headroom: a
// steady memory series gets a P95 at least DefaultMemoryHeadroom above
// its level, while CPU with the same history gets less, and a negative
// Headroom removes it.
func TestMemoryForecastKeepsHeadroom(t *testing.T) {
	forecast := func(opts profile.Options) profile.FunctionForecast {
		now := epoch
		opts.Clock = func() time.Time { return now }
		an := mustNew(t, opts)
		for i := range 3 * 24 * 12 {
			now = epoch.Add(time.Duration(i) * 5 * time.Minute)
			an.Observe(profile.Sample{Function: "f", Time: now, Usage: hal.Vector{hal.CPU: 1 + 0.01*float64(i%3), hal.Memory: 1 + 0.01*float64(i%3)}})
		}
		now = now.Add(5 * time.Minute)
		fc, err := an.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "f"}})
		require.NoError(t, err)
		return fc.Functions[0]
	}
	ff := forecast(profile.Options{})
	// Every point prediction is at least the lowest level, 1.
	require.GreaterOrEqual(t, ff.P95[hal.Memory], 1+profile.DefaultMemoryHeadroom-1e-9, "%v", ff.Basis)
	require.Less(t, ff.P95[hal.CPU], 1.1, "%v", ff.Basis)
	none := forecast(profile.Options{Headroom: map[hal.Resource]float64{hal.Memory: -1}})
	require.Less(t, none.P95[hal.Memory], 1.1, "%v", none.Basis)
	require.GreaterOrEqual(t, none.P95[hal.Memory], 1.02, "the price still covers every level seen: %v", none.Basis)
}

func TestStaticUsesItsClock(t *testing.T) {
	fixed := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	fc, err := profile.Static{Clock: func() time.Time { return fixed }}.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "a"}})
	require.NoError(t, err)
	require.Equal(t, fixed, fc.At)
}

// TestPeakSpanFloorsTheForecast checks Options.PeakSpan: P95 is at least
// the highest observation of the span (times 1+Headroom) while the peak
// is within it, not once it has left it, and not without a span; a span
// beyond MaxPeakSpan is refused.
func TestPeakSpanFloorsTheForecast(t *testing.T) {
	// Three days of CPU near 1 with one observation of 3, spikeAgo before
	// the forecast; CPU's low overrun price alone does not cover it.
	forecast := func(opts profile.Options, spikeAgo time.Duration) float64 {
		now := epoch
		opts.Clock = func() time.Time { return now }
		an := mustNew(t, opts)
		n := 3 * 24 * 12
		end := epoch.Add(time.Duration(n) * 5 * time.Minute)
		for i := range n {
			now = epoch.Add(time.Duration(i) * 5 * time.Minute)
			x := 1 + 0.01*float64(i%3)
			if end.Sub(now) == spikeAgo {
				x = 3
			}
			an.Observe(profile.Sample{Function: "f", Time: now, Usage: hal.Vector{hal.CPU: x}})
		}
		now = end
		fc, err := an.Forecast(context.Background(), time.Hour, []profile.Function{{Name: "f"}})
		require.NoError(t, err)
		return fc.Functions[0].P95[hal.CPU]
	}
	span := profile.Options{PeakSpan: map[hal.Resource]time.Duration{hal.CPU: 12 * time.Hour}}
	require.Less(t, forecast(profile.Options{}, 6*time.Hour), 2.0, "CPU has no peak span by default")
	require.GreaterOrEqual(t, forecast(span, 6*time.Hour), 3.0, "a peak 6 h old is within a 12 h span")
	require.Less(t, forecast(span, 14*time.Hour), 2.0, "a peak 14 h old has left a 12 h span")
	withHeadroom := span
	withHeadroom.Headroom = map[hal.Resource]float64{hal.CPU: 0.1}
	require.GreaterOrEqual(t, forecast(withHeadroom, 6*time.Hour), 3.3-1e-9, "the floor keeps the headroom above the peak")
	none := profile.Options{PeakSpan: map[hal.Resource]time.Duration{hal.CPU: -1}}
	require.Less(t, forecast(none, 6*time.Hour), 2.0, "a negative span means none")

	_, err := profile.New(profile.Options{PeakSpan: map[hal.Resource]time.Duration{hal.Memory: profile.MaxPeakSpan + time.Hour}})
	require.ErrorContains(t, err, "PeakSpan")
}
