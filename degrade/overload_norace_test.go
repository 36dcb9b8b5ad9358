//go:build !race

package degrade_test

import (
	"slices"
	"testing"
	"time"
)

// The overload test measures latency under CPU load; under the race
// detector (which slows every goroutine several times, and runs beside
// every other package's tests) its figures are the detector's, not the
// controller's. It runs in CI's step without -race.

// TestOverloadAdaptiveBeatsFixedThrottle runs, in one run, the unloaded
// critical path, the fixed throttle (the control) and the adaptive mode
// at 4× the non-critical budget, interleaved in five rounds, and asserts
// what the adaptive mode exists for: its critical p99 stays within 1.5×
// of the unloaded one, or, where the machine's own noise makes that
// impossible for anyone, below the fixed throttle's. (On a quiet machine
// the fixed throttle's admitted work may not hurt the critical path at
// all; both sides then measure the same and the unloaded bound decides.)
// Each loaded side sees 1,000 critical requests during the surges (the
// p99 is the 10th slowest). There is no retry: one measurement decides.
func TestOverloadAdaptiveBeatsFixedThrottle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 15 s of CPU load; skipped with -short")
	}
	var unloaded loadResult
	for range 3 {
		unloaded.critical = append(unloaded.critical, scenario(t, nil, 0, time.Second).critical...)
	}
	slices.Sort(unloaded.critical)
	sides := interleaved(t, 4, 5, time.Second, &fixedPolicy, &adaptivePolicy)
	fixed, adaptive := sides[0], sides[1]
	t.Logf("4x budget: unloaded critical p99 %v; fixed throttle critical p50 %v p99 %v, %.1f non-critical/s; adaptive p50 %v p99 %v, %.1f non-critical/s",
		unloaded.quantile(0.99), fixed.quantile(0.5), fixed.quantile(0.99), fixed.batchPerSecond(),
		adaptive.quantile(0.5), adaptive.quantile(0.99), adaptive.batchPerSecond())
	for name, r := range map[string]loadResult{"fixed": fixed, "adaptive": adaptive} {
		if len(r.critical) < 900 {
			t.Fatalf("%s: %d critical requests measured, want about 1000", name, len(r.critical))
		}
		if r.batchOffered < 900 {
			t.Fatalf("%s: %d non-critical requests offered, want about 1000", name, r.batchOffered)
		}
	}
	bound := time.Duration(1.5 * float64(unloaded.quantile(0.99)))
	if a := adaptive.quantile(0.99); a > bound && a >= fixed.quantile(0.99) {
		t.Fatalf("adaptive critical p99 %v is above 1.5x the unloaded %v and not below the fixed throttle's %v at 4x",
			a, unloaded.quantile(0.99), fixed.quantile(0.99))
	}
	if adaptive.batchAdmitted == 0 {
		t.Fatal("the adaptive mode admitted no non-critical request at all")
	}
}
