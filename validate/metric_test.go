package validate_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/validate"
)

// lognormal returns n latencies (ms) around median, seeded.
func lognormal(rng *rand.Rand, n int, median, sigma float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = median * math.Exp(sigma*rng.NormFloat64())
	}
	return s
}

// fixedSource returns one prepared sample per call, in order.
type fixedSource struct{ samples [][]float64 }

func (f *fixedSource) Samples(context.Context) ([]float64, error) {
	if len(f.samples) == 0 {
		return nil, errors.New("fixedSource: exhausted")
	}
	s := f.samples[0]
	f.samples = f.samples[1:]
	return s, nil
}

func latencyCheck(t *testing.T, src validate.Source) *validate.MetricComparison {
	t.Helper()
	m, err := validate.NewMetricComparison("latency", src, validate.MetricOptions{
		Unit:   "ms",
		Bounds: []validate.QuantileBound{{Quantile: 0.99, MaxRegression: 0.2}},
	})
	require.NoError(t, err)
	return m
}

func judge(t *testing.T, m *validate.MetricComparison) validate.Result {
	t.Helper()
	require.NoError(t, m.RecordBaseline(context.Background()))
	return m.Run(context.Background())
}

func TestMetricComparisonFailsOnDoubledLatency(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	base, now := lognormal(rng, 2000, 2, 0.3), lognormal(rng, 2000, 4, 0.3)
	r := judge(t, latencyCheck(t, &fixedSource{[][]float64{base, now}}))
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.ErrorIs(t, r.Err, validate.ErrRegression)
	require.Less(t, r.Score, 0.5)
	require.Contains(t, r.Evidence[1], "median 1.993ms → 3.994ms (+100.4%")
	require.Contains(t, r.Evidence[2], "significant")
	require.Contains(t, r.Evidence[3], "p99")
	require.Contains(t, r.Evidence[3], "violated")
}

func TestMetricComparisonFailsOnTailOnlyRegression(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	base := lognormal(rng, 5000, 2, 0.3)
	now := lognormal(rng, 5000, 2, 0.3)
	for i := 0; i < len(now); i += 25 { // 4% of requests get 5× slower
		now[i] *= 5
	}
	r := judge(t, latencyCheck(t, &fixedSource{[][]float64{base, now}}))
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.ErrorContains(t, r.Err, "p99 regressed beyond +20%")
	require.NotContains(t, r.Err.Error(), "median regressed", "the median moved little: only the bound fails")
}

func TestMetricComparisonPassesOnImprovement(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	base, now := lognormal(rng, 1000, 4, 0.3), lognormal(rng, 1000, 2, 0.3)
	r := judge(t, latencyCheck(t, &fixedSource{[][]float64{base, now}}))
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Evidence)
	require.Equal(t, 1.0, r.Score)
}

func TestMetricComparisonToleratesSmallSignificantShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	base, now := lognormal(rng, 20000, 2, 0.3), lognormal(rng, 20000, 2.1, 0.3) // +5%: significant, under the 10% tolerance
	r := judge(t, latencyCheck(t, &fixedSource{[][]float64{base, now}}))
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Evidence)
	require.Contains(t, r.Evidence[2], ": significant")
	require.Less(t, r.Score, 1.0)
	require.GreaterOrEqual(t, r.Score, 0.5)

	strict, err := validate.NewMetricComparison("strict", &fixedSource{[][]float64{base, now}}, validate.MetricOptions{Tolerance: validate.NoTolerance})
	require.NoError(t, err)
	require.Equal(t, validate.Fail, judge(t, strict).Verdict)
}

func TestMetricComparisonHigherIsBetter(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	base, now := lognormal(rng, 500, 1000, 0.1), lognormal(rng, 500, 700, 0.1) // throughput −30%
	m, err := validate.NewMetricComparison("throughput", &fixedSource{[][]float64{base, now}},
		validate.MetricOptions{Direction: validate.HigherIsBetter, Unit: "req/s"})
	require.NoError(t, err)
	r := judge(t, m)
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.Contains(t, r.Evidence[2], "less")

	up, err := validate.NewMetricComparison("throughput", &fixedSource{[][]float64{now, base}},
		validate.MetricOptions{Direction: validate.HigherIsBetter})
	require.NoError(t, err)
	require.Equal(t, validate.Pass, judge(t, up).Verdict)
}

// TestMetricComparisonFalseAlarms runs 100 seeded comparisons of two
// samples from one distribution through a Suite: at least 99 must pass.
func TestMetricComparisonFalseAlarms(t *testing.T) {
	passes := 0
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 1000+seed))
		lat := latencyCheck(t, &fixedSource{[][]float64{lognormal(rng, 2000, 2, 0.5), lognormal(rng, 2000, 2, 0.5)}})
		thr, err := validate.NewMetricComparison("throughput",
			&fixedSource{[][]float64{lognormal(rng, 300, 1000, 0.2), lognormal(rng, 300, 1000, 0.2)}},
			validate.MetricOptions{Direction: validate.HigherIsBetter, Bounds: []validate.QuantileBound{{Quantile: 0.05, MaxRegression: 0.2}}})
		require.NoError(t, err)
		errs := &validate.Counter{}
		rate, err := validate.NewRateComparison("errors", errs, validate.RateOptions{})
		require.NoError(t, err)
		s, err := validate.New([]validate.Check{lat, thr, rate}, validate.Options{})
		require.NoError(t, err)
		for range 5000 {
			errs.Add(rng.Float64() < 0.01)
		}
		require.NoError(t, s.RecordBaseline(context.Background()))
		for range 5000 {
			errs.Add(rng.Float64() < 0.01)
		}
		rep, err := s.Validate(context.Background())
		require.NoError(t, err)
		if rep.Verdict == validate.Pass {
			passes++
		} else {
			t.Logf("seed %d: false alarm\n%s", seed, rep)
		}
	}
	require.GreaterOrEqual(t, passes, 99)
}

func TestMetricComparisonTooFewSamplesIsMarginal(t *testing.T) {
	for name, c := range map[string][2][]float64{
		"empty now":      {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, {}},
		"tiny baseline":  {{1, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}},
		"empty baseline": {{}, {1}},
		"nil baseline":   {nil, {1}},
	} {
		r := judge(t, latencyCheck(t, &fixedSource{[][]float64{c[0], c[1]}}))
		require.Equal(t, validate.Marginal, r.Verdict, name)
		require.ErrorIs(t, r.Err, validate.ErrTooFewSamples, name)
		require.Contains(t, r.Evidence[0], "minimum 20", name)
	}
}

func TestMetricComparisonWithoutBaselineIsMarginal(t *testing.T) {
	m := latencyCheck(t, &fixedSource{[][]float64{{1}}})
	r := m.Run(context.Background())
	require.Equal(t, validate.Marginal, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrNoBaseline)
	require.False(t, m.ShouldRetry(r))
}

func TestMetricComparisonBadSamples(t *testing.T) {
	m := latencyCheck(t, &fixedSource{[][]float64{{1, math.NaN()}}})
	require.ErrorContains(t, m.RecordBaseline(context.Background()), "sample 1 is NaN")

	m = latencyCheck(t, &fixedSource{[][]float64{{1, 2}, {math.Inf(1)}}})
	require.NoError(t, m.RecordBaseline(context.Background()))
	r := m.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorContains(t, r.Err, "sample 0 is +Inf")

	m = latencyCheck(t, &fixedSource{[][]float64{make([]float64, 30)}}) // then exhausted
	require.NoError(t, m.RecordBaseline(context.Background()))
	r = m.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict, "a source that fails after the update is not a pass")
	require.True(t, m.ShouldRetry(r), "a source error may be transient")
}

func TestMetricComparisonZeroMedians(t *testing.T) {
	// Sparse counts (mostly zero): the mean stands in for the median.
	base, now := make([]float64, 1000), make([]float64, 1000)
	for i := 0; i < 1000; i += 100 {
		base[i] = 1
	}
	for i := 0; i < 1000; i += 10 {
		now[i] = 1
	}
	m, err := validate.NewMetricComparison("retries", &fixedSource{[][]float64{base, now}}, validate.MetricOptions{})
	require.NoError(t, err)
	r := judge(t, m)
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.Contains(t, r.Evidence[1], "+900.0%")
}

func TestNewMetricComparisonValidates(t *testing.T) {
	src := validate.SourceFunc(func(context.Context) ([]float64, error) { return nil, nil })
	_, err := validate.NewMetricComparison("", src, validate.MetricOptions{})
	require.ErrorContains(t, err, "empty name")
	_, err = validate.NewMetricComparison("m", nil, validate.MetricOptions{})
	require.ErrorContains(t, err, "nil source")
	_, err = validate.NewMetricComparison("m", src, validate.MetricOptions{
		Direction: 7, Confidence: 1.5, Tolerance: -3, MinSamples: 1,
		Bounds: []validate.QuantileBound{{Quantile: 1.2, MaxRegression: -1}},
	})
	for _, want := range []string{`"m"`, "Direction 7", "Confidence 1.5", "Tolerance -3", "MinSamples 1", "Bounds[0].Quantile 1.2", "Bounds[0].MaxRegression -1"} {
		require.ErrorContains(t, err, want)
	}
}

func TestRateComparison(t *testing.T) {
	newRate := func() *validate.RateComparison {
		r, err := validate.NewRateComparison("errors", &validate.Counter{}, validate.RateOptions{Events: "5xx"})
		require.NoError(t, err)
		return r
	}
	c := newRate()
	r := c.Judge(0, 1000, 50, 1000) // 0% → 5%
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.ErrorIs(t, r.Err, validate.ErrRegression)
	require.Contains(t, r.Evidence[0], "5xx: baseline 0 of 1000, now 50 of 1000")

	r = c.Judge(10, 1000, 12, 1000) // 1% → 1.2%: noise
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Evidence)

	r = c.Judge(100, 10000, 130, 10000) // 1% → 1.3%: significant? under +0.5 points anyway
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Evidence)

	r = c.Judge(0, 50, 10, 50)
	require.Equal(t, validate.Marginal, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrTooFewSamples)

	r = c.Judge(5, 4, 0, 100)
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorContains(t, r.Err, "impossible")

	r = newRate().Run(context.Background())
	require.ErrorIs(t, r.Err, validate.ErrNoBaseline)

	_, err := validate.NewRateComparison("e", &validate.Counter{}, validate.RateOptions{Confidence: 2, AbsoluteTolerance: 3, RelativeTolerance: -1, MinTrials: -5})
	for _, want := range []string{"Confidence 2", "AbsoluteTolerance 3", "RelativeTolerance -1", "MinTrials -5"} {
		require.ErrorContains(t, err, want)
	}
}

func TestRecorderAndCounter(t *testing.T) {
	rec := validate.NewRecorder(3)
	for i := range 5 {
		rec.Observe(float64(i))
	}
	got, err := rec.Samples(context.Background())
	require.NoError(t, err)
	require.Equal(t, []float64{2, 3, 4}, got, "the most recent samples, oldest first")
	got, err = rec.Samples(context.Background())
	require.NoError(t, err)
	require.Empty(t, got, "Samples clears")

	var c validate.Counter
	c.Add(true)
	c.Add(false)
	c.AddN(3, 10)
	e, n, err := c.Counts(context.Background())
	require.NoError(t, err)
	require.Equal(t, [2]int64{4, 12}, [2]int64{e, n})
	e, n, _ = c.Counts(context.Background())
	require.Zero(t, e+n)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = rec.Samples(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestMetricComparisonEitherIsWorse(t *testing.T) {
	require.Equal(t, "either is worse", validate.EitherIsWorse.String())
	rng := rand.New(rand.NewPCG(21, 22))
	base, now := lognormal(rng, 500, 100, 0.1), lognormal(rng, 500, 70, 0.1) // −30%: worse when the value must stay put
	m, err := validate.NewMetricComparison("queue depth", &fixedSource{[][]float64{base, now}},
		validate.MetricOptions{Direction: validate.EitherIsWorse})
	require.NoError(t, err)
	r := judge(t, m)
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.Contains(t, r.Evidence[2], "two-sided")

	// From a zero baseline any value is an unbounded change, reported as such.
	zeros, ones := make([]float64, 50), make([]float64, 50)
	for i := range ones {
		ones[i] = 1
	}
	m, err = validate.NewMetricComparison("drops", &fixedSource{[][]float64{zeros, ones}}, validate.MetricOptions{})
	require.NoError(t, err)
	r = judge(t, m)
	require.Equal(t, validate.Fail, r.Verdict, "%v", r.Evidence)
	require.Contains(t, r.Evidence[1], "+Inf%")
	require.Zero(t, r.Score)
}
