package degrade

import (
	"math"
	"sync/atomic"
	"time"
)

// tokenBucket is a lock-free rate limiter using the generic cell rate
// algorithm (GCRA): it keeps one number, the theoretical arrival time (tat)
// of the next request, and admits a request when tat is no further than
// burst intervals ahead of now. It is equivalent to a token bucket of size
// burst refilled at rate per second, and safe for concurrent use: the only
// state is an atomic int64 updated by compare-and-swap.
type tokenBucket struct {
	tat      atomic.Int64 // theoretical arrival time, Unix nanoseconds
	interval int64        // nanoseconds between admissions at the steady rate
	window   int64        // burst*interval: how far ahead tat may run
}

// newTokenBucket returns a bucket admitting ratePerSecond requests per second
// with bursts of up to burst (burst < 1 is treated as 1). ratePerSecond must
// be > 0.
func newTokenBucket(ratePerSecond float64, burst int) *tokenBucket {
	b := &tokenBucket{}
	b.init(ratePerSecond, burst)
	return b
}

// init sets up a zero bucket in place; see newTokenBucket.
func (b *tokenBucket) init(ratePerSecond float64, burst int) {
	burst = max(burst, 1)
	// Clamp in float64 before converting: int64 of a float beyond its range
	// is undefined (it gave a negative interval, admitting everything, for
	// rates of 1e-10/s). Policy.Validate refuses such rates; the clamp keeps
	// the bucket safe whatever it is given.
	const maxInterval = 1 << 60 // about 36 years; exact in float64
	interval := math.Round(float64(time.Second) / ratePerSecond)
	if !(interval <= maxInterval) { // also NaN
		interval = maxInterval
	}
	b.interval = max(1, int64(interval))
	b.window = b.interval * int64(burst)
	// Cap the window at twice the largest interval (so tat+interval never
	// overflows for times before the year 2150) while keeping room for one
	// request even at the clamped interval.
	if b.window/int64(burst) != b.interval || b.window > 1<<61 {
		b.window = 1 << 61
	}
}

// allow admits one request at now (Unix nanoseconds). When it refuses, wait
// is how long until a request would be admitted.
func (b *tokenBucket) allow(now int64) (ok bool, wait time.Duration) {
	for {
		tat := b.tat.Load()
		next := max(tat, now) + b.interval
		if ahead := next - now; ahead > b.window {
			return false, time.Duration(ahead - b.window)
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// shedder drops an exact share of requests, spread evenly: the n-th request
// is dropped when floor(n*share) > floor((n-1)*share). One atomic counter per
// priority, no lock.
type shedder struct {
	shares [3]float64       // by priority index (low, normal, high)
	count  [3]atomic.Uint64 // requests seen, by priority index
}

func newShedder(fraction float64) *shedder {
	s := &shedder{}
	s.init(fraction)
	return s
}

// init sets up a zero shedder in place; see newShedder.
func (s *shedder) init(fraction float64) {
	for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh} {
		s.shares[priorityIndex(p)] = shedShare(fraction, p)
	}
}

// priorityIndex maps a priority to 0 (low), 1 (normal) or 2 (high).
func priorityIndex(p Priority) int {
	switch {
	case p < 0:
		return 0
	case p > 0:
		return 2
	default:
		return 1
	}
}

// drop reports whether the next request of priority p is to be dropped.
func (s *shedder) drop(p Priority) bool {
	i := priorityIndex(p)
	share := s.shares[i]
	switch share {
	case 0:
		return false
	case 1:
		return true
	}
	n := s.count[i].Add(1)
	return math.Floor(float64(n)*share) > math.Floor(float64(n-1)*share)
}
