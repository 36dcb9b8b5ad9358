package histogram

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The VPA's CPU bucketing: first bucket 0.01 core, 5% growth, up to 1000
// cores (vertical-pod-autoscaler/pkg/recommender/model/aggregations_config.go).
var cpu = MustExponential(1000, 0.01, 1.05)

func TestExponentialMatchesTheVPAFormulas(t *testing.T) {
	// numBuckets = ceil(log_1.05(1000·0.05/0.01 + 1)) + 1 = ceil(174.6) + 1.
	require.Equal(t, 176, cpu.Len())
	require.Equal(t, 223, MustExponential(1000, 0.001, 1.05).Len(), "ceil(log_1.05(50001)) + 1")
	require.Equal(t, 176, MustExponential(1e12, 1e7, 1.05).Len(), "memory: 1 TB, 10 MB first bucket")

	require.Equal(t, 0.0, cpu.Start(0))
	require.InDelta(t, 0.01, cpu.Start(1), 1e-15)
	require.InDelta(t, 0.0205, cpu.Start(2), 1e-15, "0.01 + 0.0105")
	require.InDelta(t, 0.031525, cpu.Start(3), 1e-15, "0.0205 + 0.011025")

	require.Equal(t, 0, cpu.Find(0))
	require.Equal(t, 0, cpu.Find(0.00999))
	require.Equal(t, 1, cpu.Find(0.01))
	require.Equal(t, 1, cpu.Find(0.0204))
	require.Equal(t, 2, cpu.Find(0.0206))
	require.Equal(t, cpu.Len()-1, cpu.Find(5000), "beyond the range: the last bucket")
	require.Equal(t, cpu.Len()-1, cpu.Find(math.Inf(1)))
	require.Equal(t, 0, cpu.Find(math.NaN()))
	for i := 1; i < cpu.Len(); i++ {
		mid := (cpu.Start(i-1) + cpu.Start(i)) / 2
		require.Equal(t, i-1, cpu.Find(mid), "the middle of bucket %d", i-1)
	}

	_, err := NewExponential(1000, 0, 1.05)
	require.Error(t, err)
	_, err = NewExponential(1000, 0.01, 1)
	require.Error(t, err)
}

func TestPercentileIsTheEndOfTheBucket(t *testing.T) {
	h := New(cpu, 0, 1e-4)
	require.True(t, h.IsEmpty())
	require.Equal(t, 0.0, h.Percentile(0.9), "empty: 0")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 9 {
		h.Add(0.015, 1, at) // bucket 1: [0.01, 0.0205)
	}
	h.Add(0.5, 1, at)
	require.InDelta(t, 0.0205, h.Percentile(0.9), 1e-15, "90% of the weight is in bucket 1: its end")
	// 0.5 core is in bucket floor(log_1.05(0.5·5+1)) = 25, which ends at
	// 0.01·(1.05^26 − 1)/0.05.
	require.Equal(t, 25, cpu.Find(0.5))
	require.InDelta(t, 0.01*(math.Pow(1.05, 26)-1)/0.05, h.Percentile(0.95), 1e-12)
	require.InDelta(t, cpu.Start(cpu.Len()-1), func() float64 {
		h.Add(1e6, 100, at)
		return h.Percentile(0.99)
	}(), 1e-9, "the last bucket has no end: its start")
}

func TestDecayHalvesWeightPerHalfLife(t *testing.T) {
	h := New(cpu, 24*time.Hour, 1e-4)
	t0 := time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)
	h.Add(0.015, 1, t0)                 // bucket 1
	h.Add(0.5, 1, t0.Add(24*time.Hour)) // bucket 25, one half-life later: twice the weight
	require.InDelta(t, 3*h.Weight(1), h.Total(), 1e-12, "weights 1 and 2")
	require.InDelta(t, 2*h.Weight(1), h.Weight(25), 1e-12)
	require.InDelta(t, 0.0205, h.Percentile(0.33), 1e-15, "a third of the weight is the older sample")
	require.InDelta(t, cpu.Start(26), h.Percentile(0.34), 1e-15)

	// Far in the future the reference moves forward and every weight is
	// rescaled: the older samples fall below epsilon and no longer count.
	far := t0.Add(150 * 24 * time.Hour)
	h.Add(0.015, 1, far)
	require.InDelta(t, 1, h.Weight(1)/h.Total(), 1e-12, "older weights are negligible after 150 half-lives")
	require.InDelta(t, 0.0205, h.Percentile(1), 1e-15, "bucket 25 fell below epsilon")
	require.False(t, math.IsInf(h.Total(), 0))
}

func TestSubtractAndEpsilon(t *testing.T) {
	h := New(cpu, 24*time.Hour, 1e-4)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.Add(0.015, 1, at)
	h.Add(0.5, 1, at)
	h.Subtract(0.5, 1, at)
	require.InDelta(t, 0.0205, h.Percentile(1), 1e-15, "the subtracted bucket is empty")
	lo, hi := h.Range()
	require.Equal(t, 1, lo)
	require.Equal(t, 1, hi)
	h.Subtract(0.015, 1, at)
	require.True(t, h.IsEmpty())
	lo, hi = h.Range()
	require.Greater(t, lo, hi)

	tiny := New(cpu, 0, 1e-4)
	tiny.Add(0.5, 1e-5, at) // below epsilon: does not count
	require.True(t, tiny.IsEmpty())
}

func TestSignedBuckets(t *testing.T) {
	s := MustSigned(0.01, 0.08, 60)
	require.Equal(t, 237, s.Len(), "2·ceil(asinh(6000)/0.08) + 1")
	mid := s.Len() / 2
	require.Equal(t, mid, s.Find(0))
	require.Equal(t, 0.0, s.Centre(float64(mid)))
	require.Equal(t, 0, s.Find(-1e9))
	require.Equal(t, s.Len()-1, s.Find(1e9))
	require.Equal(t, s.Len()-1, s.Find(math.NaN()))
	for i := 1; i < s.Len()-1; i++ {
		require.Equal(t, i, s.Find(s.Centre(float64(i))))
		require.Less(t, s.Start(i), s.Start(i+1))
		require.Equal(t, i, s.Find(s.Start(i)+1e-9*math.Abs(s.Start(i))+1e-15), "bucket %d starts at Start(%d)", i, i)
	}
	_, err := NewSigned(0, 0.08, 60)
	require.Error(t, err)
}
