package degrade

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTokenBucketBurstThenRate(t *testing.T) {
	b := newTokenBucket(10, 3) // one every 100ms, bursts of 3
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 3 {
		if ok, _ := b.allow(now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := b.allow(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("4th request at once = %v, wait %v; want refused, wait 100ms", ok, wait)
	}
	if ok, _ := b.allow(now + int64(99*time.Millisecond)); ok {
		t.Fatal("admitted 99ms later, before a token was due")
	}
	if ok, _ := b.allow(now + int64(100*time.Millisecond)); !ok {
		t.Fatal("refused 100ms later, when a token was due")
	}
	// After a long quiet spell the bucket holds a full burst again, no more.
	later := now + int64(time.Hour)
	admitted := 0
	for range 10 {
		if ok, _ := b.allow(later); ok {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("after an hour admitted %d at once, want the burst of 3", admitted)
	}
}

func TestTokenBucketConcurrentExact(t *testing.T) {
	const burst, goroutines, tries = 50, 8, 100
	b := newTokenBucket(1, burst)
	now := time.Now().UnixNano()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range tries {
				if ok, _ := b.allow(now); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Fatalf("%d goroutines admitted %d at one instant, want exactly the burst %d", goroutines, got, burst)
	}
}

func TestShedderExactShare(t *testing.T) {
	for _, f := range []float64{0.1, 0.25, 0.5, 0.9} {
		s := newShedder(f)
		dropped := 0
		for range 1000 {
			if s.drop(PriorityNormal) {
				dropped++
			}
		}
		if want := int(f * 1000); dropped != want {
			t.Errorf("fraction %v dropped %d of 1000, want %d", f, dropped, want)
		}
	}
	s := newShedder(0.5)
	for range 100 {
		if s.drop(PriorityHigh) {
			t.Fatal("high priority dropped at fraction 0.5")
		}
		if !s.drop(PriorityLow) {
			t.Fatal("low priority admitted at fraction 0.5")
		}
	}
}

// TestTokenBucketAbsurdRates checks that rates too small for an int64
// interval (1e-10/s gave a negative interval and admitted everything) admit
// exactly the burst, and that a huge burst does not overflow the window.
func TestTokenBucketAbsurdRates(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, rate := range []float64{1e-10, 1e-300, 5e-324} {
		b := newTokenBucket(rate, 2)
		admitted := 0
		for i := range 10 {
			if ok, _ := b.allow(now + int64(i)*int64(time.Hour)); ok {
				admitted++
			}
		}
		if admitted != 2 {
			t.Errorf("rate %g/s, burst 2: admitted %d of 10 requests over 10 hours, want 2", rate, admitted)
		}
	}
	b := newTokenBucket(1e-6, 1<<40)
	if ok, _ := b.allow(now); !ok {
		t.Error("rate 1e-6/s, burst 2^40: first request refused")
	}
}
