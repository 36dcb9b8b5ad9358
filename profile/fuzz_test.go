package profile

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// The parsers of cgroup and PSI files are fuzzed in internal/cgroupfs.

func requireNamed(t *testing.T, err error, prefix string) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %q does not start with %q", err, prefix)
	}
}

// FuzzModel feeds arbitrary observations (values, time steps, gaps,
// out-of-order times) to a series and checks every forecast is finite,
// non-negative and ordered P50 ≤ P95 ≤ P99.
func FuzzModel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, int64(60))
	f.Add([]byte{0, 0, 0, 255, 0, 0}, int64(1))
	f.Add([]byte{255, 255, 255, 255}, int64(-30))
	f.Fuzz(func(t *testing.T, data []byte, step int64) {
		p := &modelParams{levelTau: DefaultLevelTau, trendTau: DefaultTrendTau, horizon: DefaultHorizon,
			halfLife: DefaultHalfLife, minSamples: 4}
		s := series{price: DefaultMemoryOverrunCost}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, b := range data {
			// Values span many orders of magnitude, including zero.
			x := 0.0
			if b != 0 {
				x = math.Ldexp(float64(b), 4*int(b)-520) // from 2^-516 to 2^1012
			}
			if b == 254 {
				x = math.MaxFloat64
			}
			at = at.Add(time.Duration(step%86400) * time.Second)
			if i%7 == 3 {
				at = at.Add(-time.Duration(b) * time.Minute) // a late sample
			}
			s.observe(p, at, x)
			q50, q95, q99, _ := s.forecast(p, at, time.Hour)
			for _, q := range []float64{q50, q95, q99} {
				if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 {
					t.Fatalf("after %d observations: forecast %v %v %v", i+1, q50, q95, q99)
				}
			}
			if q50 > q95 || q95 > q99 {
				t.Fatalf("after %d observations: unordered %v %v %v", i+1, q50, q95, q99)
			}
		}
	})
}

// FuzzAnalyzer observes arbitrary samples, at any time the time package
// can hold, and forecasts; nothing may panic and every forecast vector
// must be valid.
func FuzzAnalyzer(f *testing.F) {
	f.Add("routes", int64(1700000000), 1.5, int64(10), int64(4096), uint8(3))
	f.Add("", int64(-1<<62), -1.0, int64(-1), int64(0), uint8(0))
	f.Add("x", int64(1<<62), 1e308, int64(1<<62), int64(1<<62), uint8(255))
	f.Fuzz(func(t *testing.T, name string, unix int64, cpu float64, calls, state int64, n uint8) {
		at := time.Unix(unix, 0)
		an, err := New(Options{Clock: func() time.Time { return at }, MinSamples: 2})
		if err != nil {
			t.Fatal(err)
		}
		for i := range int(n%40) + 1 {
			an.Observe(Sample{Function: name, Time: at.Add(time.Duration(i) * time.Minute), Calls: calls, StateBytes: state,
				Usage: hal.Vector{hal.CPU: cpu * float64(i%3)}})
		}
		functions := []Function{{Name: "entry", Criticality: Critical, EntryPoint: true}}
		if name != "entry" && validName(name) {
			functions = append(functions, Function{Name: name})
		}
		fc, err := an.Forecast(context.Background(), time.Hour, functions)
		if err != nil {
			t.Fatalf("forecast: %v", err)
		}
		for _, ff := range fc.Functions {
			for _, v := range []hal.Vector{ff.P50, ff.P95, ff.P99} {
				if err := v.Validate(); err != nil {
					t.Fatalf("%s: %v", ff.Function, err)
				}
			}
			if ff.Confidence < 0 || ff.Confidence > 1 || math.IsNaN(ff.Confidence) {
				t.Fatalf("%s: confidence %v", ff.Function, ff.Confidence)
			}
		}
	})
}

func validName(s string) bool { return s != "" && strings.TrimSpace(s) == s }

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("9:name=systemd:/\n4:memory:/process_api/49\n2:cpuacct:/\n1:cpu:/\n0::/\n"))
	f.Add([]byte("0::/user.slice/session-1.scope\n"))
	f.Add([]byte("x:cpu:/\n"))
	f.Add([]byte("1:cpu:relative\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		paths, err := parseProcCgroup("cgroup", data)
		if err != nil {
			requireNamed(t, err, "cgroup")
			return
		}
		for ctl, p := range paths {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("controller %q: path %q is not absolute", ctl, p)
			}
		}
	})
}
