package degrade_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/degrade"
)

// The overload scenario of issue 18, in one process: a critical path at
// 200 requests/s of 0.2 ms of CPU each, and a non-critical function whose
// budget is 50 requests/s of 12 ms of CPU each, offered at a multiple of
// that budget. Both share the process's CPUs (GOMAXPROCS), as a data plane's
// functions do while part of the machine is away for an update.
const (
	criticalRPS  = 200
	criticalWork = 200 * time.Microsecond
	batchBudget  = 50 // non-critical requests/s: the throttle's rate
	batchWork    = 12 * time.Millisecond
	warmup       = 500 * time.Millisecond // critical traffic alone, before the surge
)

// spinIterations is how many iterations of spin take one millisecond of
// CPU, calibrated once per process (the fastest of several tries, so a
// busy machine during calibration does not shrink the work).
var spinIterations = sync.OnceValue(func() int {
	const n = 200_000
	best := time.Duration(1 << 62)
	for range 7 {
		start := time.Now()
		spin(n)
		best = min(best, time.Since(start))
	}
	return max(1, int(float64(n)*float64(time.Millisecond)/float64(best)))
})

var spinSink atomic.Uint64

// spin burns CPU for about n iterations of a multiply-xorshift.
func spin(n int) {
	x := uint64(n) | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	spinSink.Add(x & 1)
}

// work burns about d of CPU.
func work(d time.Duration) { spin(int(float64(spinIterations()) * d.Seconds() * 1000)) }

// loadResult is one scenario run's outcome.
type loadResult struct {
	critical      []time.Duration // after the warm-up; sorted
	late          []time.Duration // the generator's lateness for each of them (see BenchmarkOverloadAnchor); sorted
	batchAdmitted int
	batchOffered  int
	surge         time.Duration
}

func (r loadResult) quantile(q float64) time.Duration { return quantile(r.critical, q) }

// batchPerSecond is the non-critical throughput during the surge.
func (r loadResult) batchPerSecond() float64 {
	return float64(r.batchAdmitted) / r.surge.Seconds()
}

// runLoad offers the scenario for warmup+surge: critical requests from the
// start, non-critical ones at multiple × batchBudget after the warm-up, each
// request in its own goroutine at its scheduled time (open loop; a
// request's latency counts from its scheduled arrival, so a late generator
// does not hide queueing). Non-critical requests go through ctl.Acquire;
// critical latencies are reported with ctl.ObserveCritical. It returns once
// every request has finished.
func runLoad(ctl *degrade.Controller, multiple float64, surge time.Duration) loadResult {
	return runLoadObserved(ctl, multiple, surge, nil)
}

// runLoadObserved is runLoad that also passes each critical latency to
// observe, when not nil.
func runLoadObserved(ctl *degrade.Controller, multiple float64, surge time.Duration, observe func(time.Duration)) loadResult {
	spinIterations()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		critical []time.Duration
		late     []time.Duration
		admitted atomic.Int64
		offered  atomic.Int64
	)
	start := time.Now()
	surgeAt := start.Add(warmup)
	end := surgeAt.Add(surge)
	wg.Go(func() { // critical arrivals
		interval := time.Second / criticalRPS
		for at := start; at.Before(end); at = at.Add(interval) {
			time.Sleep(time.Until(at))
			woke := time.Since(at)
			wg.Go(func() {
				work(criticalWork)
				d := time.Since(at)
				ctl.ObserveCritical(d)
				if observe != nil {
					observe(d)
				}
				if at.After(surgeAt) {
					mu.Lock()
					critical = append(critical, d)
					late = append(late, woke)
					mu.Unlock()
				}
			})
		}
	})
	if multiple > 0 {
		wg.Go(func() { // non-critical arrivals
			interval := time.Duration(float64(time.Second) / (batchBudget * multiple))
			for at := surgeAt; at.Before(end); at = at.Add(interval) {
				time.Sleep(time.Until(at))
				offered.Add(1)
				wg.Go(func() {
					release, err := ctl.Acquire("batch")
					if err != nil {
						return
					}
					work(batchWork)
					release()
					admitted.Add(1)
				})
			}
		})
	}
	wg.Wait()
	slices.Sort(critical)
	slices.Sort(late)
	return loadResult{critical: critical, late: late, batchAdmitted: int(admitted.Load()), batchOffered: int(offered.Load()), surge: surge}
}

// Policies compared: the fixed throttle the issue tried (50/s) and the
// adaptive mode (the same rate as a ceiling, plus an adaptive concurrency
// limit that the critical guard scales by the critical path's latency).
var (
	fixedPolicy    = degrade.Policy{Mode: degrade.Throttle, RatePerSecond: batchBudget, Burst: 1}
	adaptivePolicy = degrade.Policy{Mode: degrade.Throttle, RatePerSecond: batchBudget, Burst: 1, Adaptive: true, MaxConcurrent: 2}
)

// scenario runs the load against a fresh controller with policy in force
// (nil: the non-critical function is Normal) and the critical guard
// stepping, and stops the guard afterwards.
func scenario(tb testing.TB, policy *degrade.Policy, multiple float64, surge time.Duration) loadResult {
	tb.Helper()
	ctl, err := degrade.New(degrade.Options{Functions: []string{"batch"}, Adaptive: degrade.AdaptiveOptions{InitialLimit: 2}})
	if err != nil {
		tb.Fatal(err)
	}
	if policy != nil {
		if err := ctl.Set("batch", *policy, "overload scenario", time.Now().Add(time.Hour)); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.RunGuard(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	return runLoad(ctl, multiple, surge)
}

// interleaved runs the scenario for each policy in turn, rounds times,
// and merges each policy's results, so that both sides see the same
// machine (other processes come and go) rather than one side an unlucky
// stretch of it.
func interleaved(tb testing.TB, multiple float64, rounds int, surge time.Duration, policies ...*degrade.Policy) []loadResult {
	out := make([]loadResult, len(policies))
	for range rounds {
		for i, p := range policies {
			r := scenario(tb, p, multiple, surge)
			out[i].critical = append(out[i].critical, r.critical...)
			out[i].late = append(out[i].late, r.late...)
			out[i].batchAdmitted += r.batchAdmitted
			out[i].batchOffered += r.batchOffered
			out[i].surge += r.surge
		}
	}
	for i := range out {
		slices.Sort(out[i].critical)
		slices.Sort(out[i].late)
	}
	return out
}

// BenchmarkOverload records the curve of issue 18: critical p50/p99 and
// non-critical throughput with the non-critical demand at 1×, 2×, 4× and
// 8× its budget, under the fixed throttle and the adaptive mode
// (interleaved in two rounds of 2 s surges each), beside the unloaded
// critical path, in one run. Use -benchtime 1x. Custom metrics per side:
// crit-p50-ms, crit-p99-ms, p99/unloaded, batch-admitted/s.
func BenchmarkOverload(b *testing.B) {
	const surge = 4 * time.Second
	var unloaded time.Duration
	report := func(b *testing.B, r loadResult) {
		b.ReportMetric(float64(r.quantile(0.5))/1e6, "crit-p50-ms")
		b.ReportMetric(float64(r.quantile(0.99))/1e6, "crit-p99-ms")
		b.ReportMetric(r.batchPerSecond(), "batch-admitted/s")
		if unloaded > 0 {
			b.ReportMetric(float64(r.quantile(0.99))/float64(unloaded), "p99/unloaded")
		}
	}
	b.Run("unloaded", func(b *testing.B) {
		var r loadResult
		for b.Loop() {
			r = scenario(b, nil, 0, surge)
		}
		unloaded = r.quantile(0.99)
		report(b, r)
	})
	for _, multiple := range []float64{1, 2, 4, 8} {
		b.Run("x"+strconv.Itoa(int(multiple)), func(b *testing.B) {
			var sides []loadResult
			for b.Loop() {
				sides = interleaved(b, multiple, 2, surge/2, &fixedPolicy, &adaptivePolicy)
			}
			for i, name := range []string{"fixed", "adaptive"} {
				r := sides[i]
				b.ReportMetric(float64(r.quantile(0.5))/1e6, name+"-crit-p50-ms")
				b.ReportMetric(float64(r.quantile(0.99))/1e6, name+"-crit-p99-ms")
				b.ReportMetric(r.batchPerSecond(), name+"-batch-admitted/s")
				if unloaded > 0 {
					b.ReportMetric(float64(r.quantile(0.99))/float64(unloaded), name+"-p99/unloaded")
				}
			}
		})
	}
}

// BenchmarkOverloadAnchor measures what BenchmarkOverload's critical p99
// rests on before any admission policy: its scenario (critical requests at
// 200/s, each 0.2 ms of CPU in its own goroutine, latency from its
// scheduled arrival) with no other work ("none"), and beside one CPU-bound
// non-critical request at a time (12 ms each, 50/s offered, a concurrency
// limit of 1 and no rate: "one-cpu-bound"). It reports, besides the
// critical p50/p99, the p99 of the generator's own lateness: how long after
// a critical request's scheduled arrival the generator's sleep returned,
// before the request's goroutine existed. Where that lateness makes up the
// critical p99, no admission policy short of admitting no CPU-bound work
// can bring the p99 down.
func BenchmarkOverloadAnchor(b *testing.B) {
	const surge = 4 * time.Second
	oneAtATime := degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: 1}
	for _, side := range []struct {
		name     string
		multiple float64
	}{{"none", 0}, {"one-cpu-bound", 1}} {
		b.Run(side.name, func(b *testing.B) {
			var r loadResult
			for b.Loop() {
				r = scenario(b, &oneAtATime, side.multiple, surge)
			}
			b.ReportMetric(float64(r.quantile(0.5))/1e6, "crit-p50-ms")
			b.ReportMetric(float64(r.quantile(0.99))/1e6, "crit-p99-ms")
			b.ReportMetric(float64(quantile(r.late, 0.99))/1e6, "wake-late-p99-ms")
		})
	}
}

// quantile returns the q-quantile of sorted xs (nearest rank), 0 for none.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[max(0, min(i, len(xs)-1))]
}
