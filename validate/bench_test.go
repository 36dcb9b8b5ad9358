package validate_test

import (
	"context"
	"fmt"
	"github.com/updraft-dev/updraft/validate/internal/stats"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/validate"
)

// BenchmarkVerdict measures the time to a verdict with 20 metric checks of
// 10 000 samples each (baseline already recorded), beside the baseline a
// host would write without statistics: sort each metric's samples and
// compare p99 with the old p99 (naive-p99). "suite" runs the checks
// concurrently (the default); "suite-sequential" one at a time.
func BenchmarkVerdict(b *testing.B) {
	const checks, samples = 20, 10_000
	rng := rand.New(rand.NewPCG(42, 43))
	base, now := make([][]float64, checks), make([][]float64, checks)
	for i := range checks {
		base[i] = lognormal(rng, samples, 2, 0.4)
		now[i] = lognormal(rng, samples, 2, 0.4)
	}

	b.Run("naive-p99", func(b *testing.B) {
		baseP99 := make([]float64, checks)
		for i := range checks {
			baseP99[i] = stats.Quantile(sorted(base[i]), 0.99)
		}
		b.ReportAllocs()
		for b.Loop() {
			regressed := 0
			for i := range checks {
				s := slices.Clone(now[i])
				slices.Sort(s)
				if stats.Quantile(s, 0.99) > 1.2*baseP99[i] {
					regressed++
				}
			}
			if regressed != 0 {
				b.Fatalf("%d false alarms", regressed)
			}
		}
	})

	suite := func(b *testing.B, concurrency int) {
		list := make([]validate.Check, checks)
		for i := range checks {
			src := validate.SourceFunc(func(context.Context) ([]float64, error) { return now[i], nil })
			m, err := validate.NewMetricComparison(fmt.Sprintf("metric-%02d", i), src, validate.MetricOptions{
				Bounds: []validate.QuantileBound{{Quantile: 0.99, MaxRegression: 0.2}},
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.SetBaseline(base[i]); err != nil {
				b.Fatal(err)
			}
			list[i] = m
		}
		s, err := validate.New(list, validate.Options{Concurrency: concurrency})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rep, err := s.Validate(context.Background())
			if err != nil || rep.Verdict != validate.Pass {
				b.Fatalf("verdict %s, err %v\n%s", rep.Verdict, err, rep)
			}
		}
	}
	b.Run("suite", func(b *testing.B) { suite(b, 0) })
	b.Run("suite-sequential", func(b *testing.B) { suite(b, 1) })
}

// BenchmarkMannWhitney measures one test of two 10 000-sample metrics
// beside its floor: copying and sorting the same two samples, which the
// test has to do first.
func BenchmarkMannWhitney(b *testing.B) {
	rng := rand.New(rand.NewPCG(44, 45))
	x, y := lognormal(rng, 10_000, 2, 0.4), lognormal(rng, 10_000, 2, 0.4)
	b.Run("sort-baseline", func(b *testing.B) {
		for b.Loop() {
			xs, ys := slices.Clone(x), slices.Clone(y)
			slices.Sort(xs)
			slices.Sort(ys)
		}
	})
	b.Run("mann-whitney", func(b *testing.B) {
		for b.Loop() {
			if _, err := stats.MannWhitney(x, y, stats.Greater); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProbes measures the time to a verdict with 20 HTTP probes of a
// loopback service that takes 5 ms per request: all at once (the Suite's
// default) beside one at a time (Concurrency 1, the baseline).
func BenchmarkProbes(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // the service's work, modelled as a wait
		case <-time.After(5 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	checks := make([]validate.Check, 20)
	for i := range checks {
		p, err := validate.NewHTTPProbe(fmt.Sprintf("probe-%02d", i), srv.URL, validate.HTTPProbeOptions{Client: client, BodyContains: "ok"})
		if err != nil {
			b.Fatal(err)
		}
		checks[i] = p
	}
	for _, c := range []struct {
		name        string
		concurrency int
	}{{"sequential-baseline", 1}, {"suite", 0}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := validate.New(checks, validate.Options{Concurrency: c.concurrency})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				rep, err := s.Validate(context.Background())
				if err != nil || rep.Verdict != validate.Pass {
					b.Fatalf("verdict %s, err %v\n%s", rep.Verdict, err, rep)
				}
			}
		})
	}
}
