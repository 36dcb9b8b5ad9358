package profile_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile"
)

// feedMinutes observes n one-minute samples per function, from gen.
func feedMinutes(an *profile.Analyzer, clock *fakeClock, n int, gen func(i int) []profile.Sample) {
	for i := range n {
		clock.now = epoch.Add(time.Duration(i) * time.Minute)
		samples := gen(i)
		for j := range samples {
			samples[j].Time = clock.now
			samples[j].Interval = time.Minute
		}
		an.Observe(samples...)
	}
}

func reasons(f profile.FunctionForecast) string { return strings.Join(f.Reasons, "; ") }

func TestAutoFunctionsAreJudgedFromEvidence(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	// The entry point's request rate swings with a 20-minute period.
	rate := func(i int) int64 { return int64(100 + 80*math.Sin(2*math.Pi*float64(i)/20)) }
	feedMinutes(an, clock, 120, func(i int) []profile.Sample {
		return []profile.Sample{
			{Function: "api", Calls: rate(i), Usage: hal.Vector{hal.CPU: 0.5}},
			// lookup's CPU follows the request rate.
			{Function: "lookup", Usage: hal.Vector{hal.CPU: float64(rate(i)) / 100}},
			// report runs a batch for 10 minutes every hour.
			{Function: "report", Usage: hal.Vector{hal.CPU: map[bool]float64{true: 2, false: 0}[i%60 < 10]}},
			// sessions writes state every minute, independent of the rate.
			{Function: "sessions", StateBytes: 4096, Usage: hal.Vector{hal.CPU: 0.1 + 0.01*float64(i%3)}},
			// ticker is steady, independent and stateless.
			{Function: "ticker", Usage: hal.Vector{hal.CPU: 0.2 + 0.01*float64(i%7)}},
		}
	})
	fc, err := an.Forecast(context.Background(), 10*time.Minute, []profile.Function{
		{Name: "api", Criticality: profile.Critical, EntryPoint: true},
		{Name: "lookup"}, {Name: "report"}, {Name: "sessions"}, {Name: "ticker"},
		{Name: "never"},
	})
	require.NoError(t, err)
	get := func(n string) profile.FunctionForecast {
		f, ok := fc.Lookup(n)
		require.True(t, ok, n)
		return f
	}
	lookup := get("lookup")
	require.True(t, lookup.Critical, reasons(lookup))
	require.Contains(t, reasons(lookup), `its CPU use follows the request rate of critical entry point(s) "api" (correlation 1.00`)

	report := get("report")
	require.False(t, report.Critical, reasons(report))
	require.Contains(t, reasons(report), "periodic or batch work (active in 17% of 120 observed buckets)")

	sessions := get("sessions")
	require.True(t, sessions.Critical, reasons(sessions))
	require.Contains(t, reasons(sessions), "writes state steadily (480KiB in the last 2h0m0s")

	ticker := get("ticker")
	require.False(t, ticker.Critical, reasons(ticker))
	require.Contains(t, reasons(ticker), "does not follow the request rate")
	require.Contains(t, reasons(ticker), "steady but independent")

	never := get("never")
	require.False(t, never.Critical)
	require.Contains(t, reasons(never), "never observed")
}

func TestAutoEntryPoints(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	feedMinutes(an, clock, 60, func(i int) []profile.Sample {
		admin := int64(0)
		if i%30 == 0 {
			admin = 3
		}
		return []profile.Sample{
			{Function: "ingress", Calls: 1000 + int64(i%5)},
			{Function: "admin", Calls: admin},
			{Function: "worker", Usage: hal.Vector{hal.CPU: 0.1 * float64(1000+i%5)}},
		}
	})
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{
		{Name: "ingress", EntryPoint: true},
		{Name: "admin", EntryPoint: true},
		{Name: "worker"},
	})
	require.NoError(t, err)
	ingress, _ := fc.Lookup("ingress")
	admin, _ := fc.Lookup("admin")
	worker, _ := fc.Lookup("worker")
	require.True(t, ingress.Critical, reasons(ingress))
	require.Contains(t, reasons(ingress), "request entry point with steady traffic")
	require.False(t, admin.Critical, reasons(admin))
	require.Contains(t, reasons(admin), "intermittent")
	require.True(t, worker.Critical, reasons(worker))
	require.Contains(t, reasons(worker), `"ingress"`)
}

func TestAnnotationWinsOverEvidence(t *testing.T) {
	clock := &fakeClock{epoch}
	an := mustNew(t, profile.Options{Clock: clock.Now})
	feedMinutes(an, clock, 60, func(i int) []profile.Sample {
		return []profile.Sample{
			{Function: "api", Calls: int64(10 + i)},
			{Function: "mirror", Calls: int64(10 + i)},
		}
	})
	fc, err := an.Forecast(context.Background(), time.Minute, []profile.Function{
		{Name: "api", Criticality: profile.Critical, EntryPoint: true},
		{Name: "mirror", Criticality: profile.NonCritical},
	})
	require.NoError(t, err)
	mirror, _ := fc.Lookup("mirror")
	require.False(t, mirror.Critical)
	require.Equal(t, []string{"annotated non-critical by the host"}, mirror.Reasons)
}
