package snapshot

import (
	"math/bits"
	"sync/atomic"
	"testing"
)

// keyStream yields keys from [0, n) in a pseudo-random order that visits
// every key exactly once per n steps (its period), from a seeded start. The
// benchmarks draw their keys from it: `k = mix64(k) % n` from k = 0, used
// before, stayed on key 0 (mix64(0) == 0).
//
// It steps a full-period counter modulo the next power of two 2^b ≥ n
// (an odd increment), scrambles it with a bijection of [0, 2^b) (xorshift
// and odd multiply, masked), and skips results ≥ n (cycle walking, fewer
// than two steps on average). Each step is a bijection of [0, 2^b), so the
// keys below n come out each once per 2^b steps of the counter.
type keyStream struct {
	n, mask, inc, ctr uint64
	half              uint
}

// keySeeds gives each parallel benchmark goroutine its own start.
var keySeeds atomic.Uint64

func newKeyStream(n, seed uint64) *keyStream {
	if n == 0 {
		panic("keyStream: n is 0")
	}
	b := uint(bits.Len64(n - 1))
	mask := uint64(1)<<b - 1
	if b == 64 {
		mask = ^uint64(0)
	}
	return &keyStream{
		n:    n,
		mask: mask,
		inc:  (mix64(seed^0x5851f42d4c957f2d) | 1) & mask, // odd: full period
		ctr:  mix64(seed+1) & mask,                        // seeded, not 0
		half: max(b/2, 1),
	}
}

// nextKeyStream is a stream with a seed no other stream of this process has.
func nextKeyStream(n uint64) *keyStream { return newKeyStream(n, keySeeds.Add(1)) }

func (s *keyStream) next() uint64 {
	for {
		s.ctr = (s.ctr + s.inc) & s.mask
		x := s.ctr
		x ^= x >> s.half
		x = (x * 0x9e3779b97f4a7c15) & s.mask
		x ^= x >> s.half
		x = (x * 0xbf58476d1ce4e5b9) & s.mask
		x ^= x >> s.half
		if x < s.n {
			return x
		}
	}
}

// TestKeyStreamVisitsEveryKey: over one period (n steps) the stream yields
// every key of [0, n) exactly once, whatever the seed, for n a power of two
// or not; and two seeds give different orders.
func TestKeyStreamVisitsEveryKey(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 1000, 1 << 16, 100_003, 1 << 20} {
		for _, seed := range []uint64{0, 1, 42} {
			s := newKeyStream(n, seed)
			seen := make([]bool, n)
			for i := range n {
				k := s.next()
				if k >= n {
					t.Fatalf("n=%d seed=%d: key %d out of range", n, seed, k)
				}
				if seen[k] {
					t.Fatalf("n=%d seed=%d: key %d again at step %d of one period", n, seed, k, i)
				}
				seen[k] = true
			}
		}
	}
	a, b := newKeyStream(1<<20, 1), newKeyStream(1<<20, 2)
	same := 0
	for range 1000 {
		if a.next() == b.next() {
			same++
		}
	}
	if same > 10 {
		t.Fatalf("seeds 1 and 2 agree on %d of 1000 keys", same)
	}
}

// TestKeyStreamSpreads: the first n/16 keys of a stream fall evenly over
// 16 ranges of [0, n) (each within 10% of its share): a short benchmark
// touches the whole map, not one corner of it.
func TestKeyStreamSpreads(t *testing.T) {
	const n = 1 << 20
	s := newKeyStream(n, 7)
	var buckets [16]int
	for range n / 16 {
		buckets[s.next()*16/n]++
	}
	want := n / 16 / 16
	for i, got := range buckets {
		if got < want*9/10 || got > want*11/10 {
			t.Fatalf("range %d got %d keys, want about %d (%v)", i, got, want, buckets)
		}
	}
}
