package trace_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

// The cases below are computed by hand from the rules of
// kubernetes/autoscaler's vertical-pod-autoscaler/pkg/recommender, not
// from the code under test.

// bucketEnd is the end of the VPA bucket holding x: with first bucket size
// f and growth 1.05, bucket n ≥ 1 starts at f·(1.05ⁿ − 1)/0.05 and x is in
// bucket floor(log_1.05(x·0.05/f + 1)).
func bucketEnd(x, f float64) float64 {
	n := math.Floor(math.Log(x*0.05/f+1) / math.Log(1.05))
	return f * (math.Pow(1.05, n+1) - 1) / 0.05
}

// target is the recommender's target for a percentile p: ResourceAmount
// truncates to whole millicores (CPU) or bytes, then adds the truncated
// 15% margin.
func target(p, unit float64) float64 {
	base := math.Trunc(p * unit)
	return (base + math.Trunc(base*0.15)) / unit
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func reserve(t *testing.T, v *trace.VPA) hal.Vector {
	t.Helper()
	r, err := v.Reserve(context.Background(), t0, time.Hour)
	require.NoError(t, err)
	return r
}

func TestVPAMatchesHandComputedCases(t *testing.T) {
	t.Run("p90 at a bucket's end, plus 15%", func(t *testing.T) {
		v, err := trace.NewVPA(trace.DefaultVPAConfig())
		require.NoError(t, err)
		for i := range 10 {
			v.Observe(trace.Point{Time: t0.Add(time.Duration(i) * time.Minute), Usage: hal.Vector{hal.CPU: 0.5, hal.Memory: 2e9}})
		}
		// 0.5 core is in bucket floor(log_1.05(3.5)) = 25, which ends at
		// 0.01·(1.05^26 − 1)/0.05 = 0.511135 core: 511 m, +76 m.
		require.InDelta(t, 0.511135, bucketEnd(0.5, 0.01), 1e-6)
		require.InDelta(t, 0.587, target(bucketEnd(0.5, 0.01), 1000), 1e-12)
		r := reserve(t, v)
		require.InDelta(t, 0.587, r[hal.CPU], 1e-12)
		require.InDelta(t, target(bucketEnd(2e9, 1e7), 1), r[hal.Memory], 1e-3)
	})

	t.Run("CPU first bucket 0.001 core", func(t *testing.T) {
		cfg := trace.DefaultVPAConfig()
		cfg.CPUFirstBucket = 0.001
		cfg.MinCPU = 0
		v, err := trace.NewVPA(cfg)
		require.NoError(t, err)
		v.Observe(trace.Point{Time: t0, Usage: hal.Vector{hal.CPU: 0.0123}})
		// 12.3 m is in bucket floor(log_1.05(0.0123·50 + 1)) = 9, which
		// ends at 0.001·(1.05^10 − 1)/0.05 = 12.58 m; truncated to 12 m,
		// +1 m.
		require.InDelta(t, 0.01258, bucketEnd(0.0123, 0.001), 1e-5)
		require.InDelta(t, 0.013, reserve(t, v)[hal.CPU], 1e-12)
	})

	t.Run("decay: a sample a day newer weighs twice", func(t *testing.T) {
		cfg := trace.DefaultVPAConfig()
		cfg.TargetCPUPercentile = 0.5
		cfg.SafetyMargin = 0 // zero means zero
		v, err := trace.NewVPA(cfg)
		require.NoError(t, err)
		v.Observe(trace.Point{Time: t0, Usage: hal.Vector{hal.CPU: 4}})
		v.Observe(trace.Point{Time: t0.Add(24 * time.Hour), Usage: hal.Vector{hal.CPU: 1}})
		// Weights 1 (4 cores) and 2 (1 core): half the weight is reached in
		// 1 core's bucket. Without decay it would be 4 cores' bucket.
		require.InDelta(t, math.Trunc(bucketEnd(1, 0.01)*1000)/1000, reserve(t, v)[hal.CPU], 1e-12)
		v.Observe(trace.Point{Time: t0.Add(24*time.Hour + time.Minute), Usage: hal.Vector{hal.CPU: 4}})
		// Now 4 cores weigh 1 + 2·2^(1/1440): more than half.
		require.InDelta(t, math.Trunc(bucketEnd(4, 0.01)*1000)/1000, reserve(t, v)[hal.CPU], 1e-12)
	})

	t.Run("memory: one peak per 24 h interval", func(t *testing.T) {
		cfg := trace.DefaultVPAConfig()
		cfg.TargetMemoryPercentile = 0.5
		cfg.SafetyMargin = 0
		v, err := trace.NewVPA(cfg)
		require.NoError(t, err)
		obs := func(d time.Duration, bytes float64) {
			v.Observe(trace.Point{Time: t0.Add(d), Usage: hal.Vector{hal.Memory: bytes}})
		}
		obs(0, 1e9)            // opens [t0, t0+24h), peak 1 GB
		obs(time.Hour, 3e9)    // replaces the peak: 3 GB
		obs(2*time.Hour, 2e9)  // below the peak: nothing
		obs(23*time.Hour, 1e8) // nothing
		// One peak in the histogram, 3 GB: half its weight is in its bucket.
		require.InDelta(t, math.Trunc(bucketEnd(3e9, 1e7)), reserve(t, v)[hal.Memory], 1)
		obs(25*time.Hour, 1.5e9) // opens [t0+24h, t0+48h), peak 1.5 GB, weighing 2 (its interval ends a day later)
		// Weights: 3 GB 1, 1.5 GB 2: the median is in 1.5 GB's bucket.
		require.InDelta(t, math.Trunc(bucketEnd(1.5e9, 1e7)), reserve(t, v)[hal.Memory], 1)
		obs(24*time.Hour, 9e9) // out of order: discarded
		require.InDelta(t, math.Trunc(bucketEnd(1.5e9, 1e7)), reserve(t, v)[hal.Memory], 1)
		obs(71*time.Hour+59*time.Minute, 1.2e9) // the third interval [48h, 72h) opens, weighing 4
		require.InDelta(t, math.Trunc(bucketEnd(1.2e9, 1e7)), reserve(t, v)[hal.Memory], 1, "weights 1, 2, 4: the median is the newest peak's")
	})

	t.Run("pod minimums after the margin", func(t *testing.T) {
		v, err := trace.NewVPA(trace.DefaultVPAConfig())
		require.NoError(t, err)
		require.Equal(t, hal.Vector{hal.CPU: 0.025, hal.Memory: 250 << 20}, reserve(t, v), "no history: the minimums")
		v.Observe(trace.Point{Time: t0, Usage: hal.Vector{hal.CPU: 0.012, hal.Memory: 1e8}})
		// 12 m is in bucket 1 (ends at 20.5 m: 20 m + 3 m = 23 m < 25 m).
		require.Equal(t, hal.Vector{hal.CPU: 0.025, hal.Memory: 250 << 20}, reserve(t, v))
		v.Observe(trace.Point{Time: t0.Add(time.Minute), Usage: hal.Vector{hal.CPU: 0.012}})
		v.Observe(trace.Point{Time: t0.Add(time.Minute), Usage: hal.Vector{hal.CPU: 9}}) // same start: discarded
		require.Equal(t, 0.025, reserve(t, v)[hal.CPU])
	})
}

func TestVPARejectsBadConfig(t *testing.T) {
	for _, mutate := range []func(*trace.VPAConfig){
		func(c *trace.VPAConfig) { c.CPUFirstBucket = 0 },
		func(c *trace.VPAConfig) { c.SafetyMargin = -0.1 },
		func(c *trace.VPAConfig) { c.TargetMemoryPercentile = 1.5 },
		func(c *trace.VPAConfig) { c.MemoryInterval = 0 },
		func(c *trace.VPAConfig) { c.MinMemory = math.Inf(1) },
	} {
		cfg := trace.DefaultVPAConfig()
		mutate(&cfg)
		_, err := trace.NewVPA(cfg)
		require.ErrorIs(t, err, trace.ErrBadConfig)
		require.ErrorContains(t, err, "VPAConfig.")
	}
}

func TestWindowPercentile(t *testing.T) {
	w, err := trace.NewWindowPercentile(trace.DefaultWindowConfig())
	require.NoError(t, err)
	// 24 points in the last 2 hours, 1..24 cores: the nearest-rank p95 is
	// the ⌈22.8⌉ = 23rd smallest, 23 cores; × 1.2.
	for i := range 30 {
		w.Observe(trace.Point{Time: t0.Add(time.Duration(i) * trace.Step), Usage: hal.Vector{hal.CPU: float64(i - 5)}})
	}
	at := t0.Add(30 * trace.Step)
	r, err := w.Reserve(context.Background(), at, time.Hour)
	require.NoError(t, err)
	require.InDelta(t, 23*1.2, r[hal.CPU], 1e-9)
	// Three hours later nothing is in the window: the reservation is kept.
	r, err = w.Reserve(context.Background(), at.Add(3*time.Hour), time.Hour)
	require.NoError(t, err)
	require.InDelta(t, 23*1.2, r[hal.CPU], 1e-9)

	one, err := trace.NewWindowPercentile(trace.WindowConfig{Window: time.Hour, Percentile: 1, Factor: 1})
	require.NoError(t, err)
	one.Observe(trace.Point{Time: t0, Usage: hal.Vector{hal.Memory: 7}})
	r, err = one.Reserve(context.Background(), t0.Add(time.Minute), time.Hour)
	require.NoError(t, err)
	require.Equal(t, hal.Vector{hal.Memory: 7}, r, "a factor of 1 adds nothing")

	_, err = trace.NewWindowPercentile(trace.WindowConfig{Window: time.Hour, Percentile: 0.95, Factor: -1})
	require.ErrorIs(t, err, trace.ErrBadConfig)
}
