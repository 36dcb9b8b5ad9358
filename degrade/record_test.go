package degrade_test

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/degrade"
)

// TestRecordGuardTrace records testdata/guard/recorded-4x.trace from the
// overload scenario on this machine: critical traffic alone for 2 s, then
// 3 s of non-critical demand at 4× its budget under the fixed throttle (so
// the surge reaches the critical path unchecked), then 4 s of critical
// traffic alone; one line per 100 ms step with the Go scheduler's p99 and
// the critical latencies of the step. It runs only with
// UPDRAFT_RECORD_TRACE=1.
func TestRecordGuardTrace(t *testing.T) {
	if os.Getenv("UPDRAFT_RECORD_TRACE") != "1" {
		t.Skip("set UPDRAFT_RECORD_TRACE=1 to record the trace")
	}
	var (
		mu    sync.Mutex
		step  []time.Duration
		lines []string
	)
	observe := func(d time.Duration) {
		mu.Lock()
		step = append(step, d)
		mu.Unlock()
	}
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	var prev []uint64
	schedP99 := func() time.Duration {
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		defer func() { prev = append(prev[:0], h.Counts...) }()
		if prev == nil {
			return 0
		}
		var total, seen uint64
		for i := range h.Counts {
			total += h.Counts[i] - prev[i]
		}
		for i := range h.Counts {
			seen += h.Counts[i] - prev[i]
			if total > 0 && seen >= uint64(math.Ceil(0.99*float64(total))) {
				return time.Duration(math.Min(h.Buckets[i+1], 10) * float64(time.Second))
			}
		}
		return 0
	}
	done := make(chan struct{})
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		schedP99()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			mu.Lock()
			s := step
			step = nil
			mu.Unlock()
			var b strings.Builder
			fmt.Fprintf(&b, "%d;", schedP99().Microseconds())
			for i, d := range s {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%d", d.Microseconds())
			}
			lines = append(lines, b.String())
		}
	}()
	run := func(p *degrade.Policy, multiple float64, surge time.Duration) {
		ctl := degrade.MustNew(degrade.Options{Functions: []string{"batch"}})
		if p != nil {
			if err := ctl.Set("batch", *p, "record", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		runLoadObserved(ctl, multiple, surge, observe)
	}
	run(nil, 0, 2*time.Second-warmup)
	run(&fixedPolicy, 4, 3*time.Second)
	run(nil, 0, 4*time.Second-warmup)
	close(done)
	<-recorded
	header := fmt.Sprintf("# recorded by TestRecordGuardTrace (UPDRAFT_RECORD_TRACE=1) at %s, 2 vCPUs shared with other work\n"+
		"# 2 s critical only (200/s x 0.2 ms), 3.5 s with non-critical at 4x a 50/s budget (12 ms CPU each; fixed throttle; its first 0.5 s critical only), 4 s critical only\n"+
		"# one guard step (100 ms) a line: Go scheduler p99 in microseconds; the critical latencies of the step in microseconds\n",
		time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile("testdata/guard/recorded-4x.trace", []byte(header+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d steps", len(lines))
}

// TestRecordPSITrace records testdata/guard/recorded-psi.trace from this
// machine's real /proc/pressure/cpu (through NewPSI): "some avg10" every
// 500 ms for 8 s, then for 10 s while 3 x NumCPU threads burn CPU in this
// process (GOMAXPROCS raised to match), then for 20 s after (avg10 decays over about 10 s). It runs
// only with UPDRAFT_RECORD_TRACE=1.
func TestRecordPSITrace(t *testing.T) {
	if os.Getenv("UPDRAFT_RECORD_TRACE") != "1" {
		t.Skip("set UPDRAFT_RECORD_TRACE=1 to record the trace")
	}
	psi, err := degrade.NewPSI("/proc", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	read := func(n int) {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for range n {
			<-tick.C
			p, err := psi.Pressure(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%.2f", p))
		}
	}
	read(16)
	// Goroutines alone cannot stall other tasks: only GOMAXPROCS threads
	// run Go code. Raise it so that the burners are that many runnable
	// threads competing for the CPUs, as other processes' threads would be.
	burners := 3 * runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(burners))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range burners {
		wg.Go(func() {
			for x := 0; ; x++ {
				if x%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	read(20)
	close(stop)
	wg.Wait()
	read(40)
	header := fmt.Sprintf("# recorded by TestRecordPSITrace (UPDRAFT_RECORD_TRACE=1) at %s, 2 vCPUs shared with other work\n"+
		"# /proc/pressure/cpu some avg10 (percent) every 500 ms: readings 1-16 before, 17-36 while 3 x NumCPU threads (GOMAXPROCS raised) burn CPU, 37-76 after\n",
		time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile("testdata/guard/recorded-psi.trace", []byte(header+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d readings", len(lines))
}
