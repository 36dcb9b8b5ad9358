package profile_test

import (
	"context"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

// A host feeds its own measurements with Observe and asks, before an
// update, what each function will need in the next ten minutes and which
// ones must keep serving.
func ExampleAnalyzer_Forecast() {
	start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	now := start
	an, err := profile.New(profile.Options{Clock: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	for i := range 90 { // an hour and a half of one-minute samples
		now = start.Add(time.Duration(i) * time.Minute)
		requests := int64(200 + 100*(i%10)) // the request rate swings
		an.Observe(
			profile.Sample{Function: "routes", Time: now, Interval: time.Minute, Calls: requests,
				Usage: hal.Vector{hal.CPU: 0.5, hal.Memory: 64 << 20}},
			profile.Sample{Function: "fib", Time: now, Interval: time.Minute,
				Usage: hal.Vector{hal.CPU: float64(requests) / 1000, hal.Memory: 32 << 20}},
			profile.Sample{Function: "stats", Time: now, Interval: time.Minute,
				Usage: hal.Vector{hal.CPU: float64(i % 30 / 25), hal.Memory: 16 << 20}},
		)
	}
	fc, err := an.Forecast(context.Background(), 10*time.Minute, []profile.Function{
		{Name: "routes", Criticality: profile.Critical, EntryPoint: true, DependsOn: []string{"arp"}},
		{Name: "arp", Criticality: profile.Auto},
		{Name: "fib", Criticality: profile.Auto},
		{Name: "stats", Criticality: profile.Auto},
	})
	if err != nil {
		panic(err)
	}
	for _, f := range fc.Functions {
		fmt.Printf("%s critical=%v memory p95=%s\n", f.Function, f.Critical, hal.FormatQuantity(hal.Memory, f.P95[hal.Memory]))
		fmt.Printf("  because %s\n", f.Reasons[len(f.Reasons)-1])
	}
	// Output:
	// arp critical=true memory p95=0B
	//   because critical because "routes" (critical) depends on it
	// fib critical=true memory p95=33.6MiB
	//   because auto: its CPU use follows the request rate of critical entry point(s) "routes" (correlation 1.00 over 90 buckets)
	// routes critical=true memory p95=67.2MiB
	//   because annotated critical by the host
	// stats critical=false memory p95=16.8MiB
	//   because auto: periodic or batch work (active in 17% of 90 observed buckets); judged non-critical
}

// The in-process meter wraps each unit of work of a goroutine-level
// function; as a Collector it reports calls, latency, thread CPU time and
// state written since the previous Collect.
func ExampleMeter() {
	m := profile.NewMeter(profile.MeterOptions{})
	data := []byte("a unit of work")
	for range 3 {
		done := m.Track("checksum")
		sum := 0
		for _, b := range data { // the function's work
			sum += int(b)
		}
		done()
		_ = sum
	}
	m.Wrote("checksum", 512)
	samples, err := m.Collect(context.Background())
	if err != nil {
		panic(err)
	}
	s := samples[0]
	fmt.Println(s.Function, s.Calls, "calls,", s.StateBytes, "bytes of state, cpu measured:", s.Usage[hal.CPU] >= 0)
	// Output: checksum 3 calls, 512 bytes of state, cpu measured: true
}

// Static is the in-memory Profiler tests and examples use in place of an
// Analyzer: fixed demands, annotations only.
func ExampleStatic() {
	p := profile.Static{Demand: map[string]hal.Vector{"routes": {hal.CPU: 1}}}
	fc, err := p.Forecast(context.Background(), time.Minute, []profile.Function{
		{Name: "routes", Criticality: profile.Critical},
		{Name: "stats"},
	})
	if err != nil {
		panic(err)
	}
	for _, f := range fc.Functions {
		fmt.Println(f.Function, f.P95, f.Critical)
	}
	// Output:
	// routes cpu=1 cores true
	// stats  false
}
