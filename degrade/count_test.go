package degrade

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// admissions returns f's admissions as the collector reads them.
func admissions(c *Controller, f *function) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f.admissionsLocked()
}

// TestAdmissionCountFolds starts a function's packed state just below the
// fold point and checks that admissions across it (plain, within a limit,
// slot-less) are all counted, that the state's admissions half is emptied
// into folded exactly once, that the in-flight half is untouched, and that
// a half-done fold (state emptied, folded not yet added) does not make the
// count go back.
func TestAdmissionCountFolds(t *testing.T) {
	ctl := MustNew(Options{Functions: []string{"f"}})
	f := ctl.lookup("f")
	const start = foldAt - 3
	f.folded.Store(0)
	f.state.Store(uint64(start) << 32)
	f.admitted = 0

	var wg sync.WaitGroup
	const each = 1000
	for g := range 3 {
		wg.Go(func() {
			for range each {
				switch g {
				case 0:
					f.admit()
					f.done()
				case 1:
					if f.admitWithin(1<<20, admitOne) == 0 {
						t.Error("admitWithin refused under a limit never reached")
						return
					}
					f.done()
				case 2:
					f.count()
				}
			}
		})
	}
	wg.Wait()
	if got, want := admissions(ctl, f), uint64(start+3*each); got != want {
		t.Fatalf("admissions = %d, want %d", got, want)
	}
	if got := f.folded.Load(); got != foldAt {
		t.Fatalf("folded = %d, want exactly one fold (%d)", got, uint64(foldAt))
	}
	if got := f.state.Load() >> 32; got != 3*each-3 {
		t.Fatalf("state's admissions half = %d after the fold, want %d", got, 3*each-3)
	}
	if got := f.inFlight(); got != 0 {
		t.Fatalf("in flight = %d, want 0", got)
	}

	// A fold seen half done: put the state back as it was before the fold
	// (same total), then do the fold's first half only.
	total := uint64(start + 3*each)
	f.folded.Store(0)
	f.state.Store(total << 32)
	if got := admissions(ctl, f); got != total {
		t.Fatalf("admissions before the fold = %d, want %d", got, total)
	}
	f.state.Add(^(uint64(foldAt)<<32 - 1)) // state emptied, folded not yet added
	if got := admissions(ctl, f); got != total {
		t.Fatalf("admissions during a half-done fold = %d, want the last value %d", got, total)
	}
	f.folded.Add(foldAt)
	f.admit()
	if got := admissions(ctl, f); got != total+1 {
		t.Fatalf("admissions after the fold completes = %d, want %d", got, total+1)
	}
}

// TestAdmissionCountExact checks, with many goroutines, that every path of
// Acquire and Allow counts each admission once and every refusal as a
// refusal, and that in flight returns to 0: a Normal function, a
// concurrency-only throttle (some refused), and a throttle with a rate
// whose refusals give their slot back uncounted.
func TestAdmissionCountExact(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Functions: []string{"normal", "slots", "rate"}})
	until := clk.Now().Add(time.Hour)
	must(t, ctl.Set("slots", Policy{Mode: Throttle, MaxConcurrent: 3}, "", until))
	must(t, ctl.Set("rate", Policy{Mode: Throttle, RatePerSecond: 1, Burst: 50, MaxConcurrent: 100}, "", until))

	type tally struct {
		sync.Mutex
		admitted, refused map[string]uint64
	}
	got := tally{admitted: map[string]uint64{}, refused: map[string]uint64{}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := map[string][2]uint64{}
			for i := range 500 {
				for _, name := range []string{"normal", "slots", "rate"} {
					var err error
					if i%5 == 0 {
						err = ctl.Allow(name)
					} else {
						var release func()
						release, err = ctl.Acquire(name)
						if err == nil {
							release()
						}
					}
					n := local[name]
					switch {
					case err == nil:
						n[0]++
					case errors.Is(err, ErrThrottled):
						n[1]++
					default:
						t.Errorf("%s: %v", name, err)
					}
					local[name] = n
				}
			}
			got.Lock()
			for name, n := range local {
				got.admitted[name] += n[0]
				got.refused[name] += n[1]
			}
			got.Unlock()
		})
	}
	wg.Wait()
	if got.admitted["rate"] != 50 {
		t.Errorf("rate: %d admitted, want the burst of 50 (the clock does not move)", got.admitted["rate"])
	}
	if got.admitted["normal"] != 8*500 {
		t.Errorf("normal: %d admitted, want %d", got.admitted["normal"], 8*500)
	}
	for _, s := range ctl.Status() {
		f := ctl.lookup(s.Function)
		if n := admissions(ctl, f); n != got.admitted[s.Function] {
			t.Errorf("%s: counted %d admissions, callers saw %d", s.Function, n, got.admitted[s.Function])
		}
		var refused uint64
		if w := f.win.Load(); w != nil {
			refused = w.counts.throttled.Load()
		}
		if refused != got.refused[s.Function] {
			t.Errorf("%s: counted %d refusals, callers saw %d", s.Function, refused, got.refused[s.Function])
		}
		if s.InFlight != 0 {
			t.Errorf("%s: %d in flight after every release", s.Function, s.InFlight)
		}
	}
}

// TestConcurrencyLimitHoldsUnderContention: goroutines racing for three
// slots never hold more than three at once, whichever way admitWithin took
// its slot (the swap, or the add given back when it went over), and every
// slot is given back.
func TestConcurrencyLimitHoldsUnderContention(t *testing.T) {
	const limit = 3
	ctl := MustNew(Options{Functions: []string{"f"}})
	must(t, ctl.Set("f", Policy{Mode: Throttle, MaxConcurrent: limit}, "", time.Now().Add(time.Hour)))
	h, err := ctl.Handle("f")
	must(t, err)
	var holding, most, admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5000 {
				release, err := h.Acquire()
				if err != nil {
					continue
				}
				n := holding.Add(1)
				runtime.Gosched()
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				admitted.Add(1)
				holding.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > limit {
		t.Fatalf("%d requests held a slot at once, limit %d", m, limit)
	}
	if most.Load() == 0 || admitted.Load() == 0 {
		t.Fatal("nothing was admitted")
	}
	f := ctl.lookup("f")
	if n := f.inFlight(); n != 0 {
		t.Fatalf("%d slot(s) still taken after every release", n)
	}
	if n := admissions(ctl, f); n != uint64(admitted.Load()) {
		t.Fatalf("counted %d admissions, callers saw %d", n, admitted.Load())
	}
}

// TestAdmitByAddGivesBackOverTheLimit checks admitWithin's contended path
// on its own, since a test can hardly make a swap fail at will.
func TestAdmitByAddGivesBackOverTheLimit(t *testing.T) {
	f := &function{name: "f"}
	for i := int64(1); i <= 2; i++ {
		if n := f.admitByAdd(2, admitOne); n != i {
			t.Fatalf("admission %d: got %d in flight", i, n)
		}
	}
	before := f.state.Load()
	if n := f.admitByAdd(2, admitOne); n != 0 {
		t.Fatalf("admitted a third request under a limit of 2 (%d in flight)", n)
	}
	if after := f.state.Load(); after != before {
		t.Fatalf("a refusal changed the state from %#x to %#x", before, after)
	}
	if n := f.admitByAdd(3, 1); n != 3 {
		t.Fatalf("an uncounted slot under a limit of 3: got %d in flight", n)
	}
	if got := f.state.Load() >> 32; got != 2 {
		t.Fatalf("%d admissions counted, want 2 (an uncounted slot is not one)", got)
	}
}
