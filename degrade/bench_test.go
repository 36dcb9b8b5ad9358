package degrade_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/updraft-dev/updraft/degrade"
)

// BenchmarkAllow measures per-request admission cost from parallel
// goroutines, beside golang.org/x/time/rate's Limiter.Allow in the same run.
// "admit" variants have a rate high enough that every request is admitted;
// "refuse" variants a rate low enough that nearly every request is refused.
func BenchmarkAllow(b *testing.B) {
	until := time.Now().Add(time.Hour)
	newCtl := func(b *testing.B, p *degrade.Policy) *degrade.Controller {
		ctl := degrade.MustNew(degrade.Options{})
		if p != nil {
			if err := ctl.Set("f", *p, "bench", until); err != nil {
				b.Fatal(err)
			}
		}
		return ctl
	}
	parallel := func(b *testing.B, allow func() bool) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				allow()
			}
		})
	}
	b.Run("xtimerate/admit", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1000)
		parallel(b, l.Allow)
	})
	b.Run("degrade/throttle-admit", func(b *testing.B) {
		ctl := newCtl(b, &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 1e9, Burst: 1000})
		parallel(b, func() bool { return ctl.Allow("f") == nil })
	})
	b.Run("xtimerate/refuse", func(b *testing.B) {
		l := rate.NewLimiter(1, 1)
		parallel(b, l.Allow)
	})
	b.Run("degrade/throttle-refuse", func(b *testing.B) {
		ctl := newCtl(b, &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 1, Burst: 1})
		parallel(b, func() bool { return ctl.Allow("f") == nil })
	})
	b.Run("degrade/normal-never-set", func(b *testing.B) {
		ctl := newCtl(b, nil)
		parallel(b, func() bool { return ctl.Allow("f") == nil })
	})
	b.Run("degrade/shed-half", func(b *testing.B) {
		ctl := newCtl(b, &degrade.Policy{Mode: degrade.Shed, ShedFraction: 0.5})
		parallel(b, func() bool { return ctl.Allow("f") == nil })
	})
	b.Run("degrade/acquire-release-concurrency", func(b *testing.B) {
		ctl := newCtl(b, &degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: 1 << 20})
		parallel(b, func() bool {
			release, err := ctl.Acquire("f")
			if err != nil {
				return false
			}
			release()
			return true
		})
	})
	b.Run("degrade/acquire-release-adaptive", func(b *testing.B) {
		ctl := newCtl(b, &degrade.Policy{Mode: degrade.Throttle, Adaptive: true})
		parallel(b, func() bool {
			release, err := ctl.Acquire("f")
			if err != nil {
				return false
			}
			release()
			return true
		})
	})
}

// discardWriter is an http.ResponseWriter that keeps nothing but its
// header map, cleared per request, so the benchmark measures the handler
// and the middleware rather than a recorder's allocations.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkMiddleware measures the middleware's per-request overhead against
// the bare handler, in the same run.
func BenchmarkMiddleware(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	serve := func(b *testing.B, h http.Handler, accept string) {
		req := httptest.NewRequest(http.MethodGet, "/f", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	}
	b.Run("bare", func(b *testing.B) { serve(b, bare, "") })
	b.Run("middleware/normal", func(b *testing.B) {
		serve(b, degrade.MustNew(degrade.Options{}).Middleware("f", bare), "")
	})
	b.Run("middleware/throttle-admit", func(b *testing.B) {
		ctl := degrade.MustNew(degrade.Options{})
		if err := ctl.Set("f", degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 1e9, Burst: 1000, MaxConcurrent: 100}, "bench", time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		serve(b, ctl.Middleware("f", bare), "")
	})
	b.Run("middleware/disabled-json", func(b *testing.B) {
		ctl := degrade.MustNew(degrade.Options{})
		if err := ctl.Set("f", degrade.Policy{Mode: degrade.Disable}, "bench", time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		serve(b, ctl.Middleware("f", bare), "application/json")
	})
}

// BenchmarkAcquireRelease measures one Acquire and its release, serial and
// from parallel goroutines, beside golang.org/x/sync/semaphore in the same
// run: Weighted.TryAcquire+Release (non-blocking, the closest analogue of
// Acquire, which never waits) and Weighted.Acquire+Release, each of weight
// 1 with the same capacity as the degrade throttle's MaxConcurrent (never
// reached, so every side admits every request). The degrade sides are a
// function under a concurrency-only throttle (no rate: no clock on the
// admission path) by name and through a Handle, a declared function in
// Normal mode by Handle and by name, and an adaptive throttle (which reads
// the clock twice to measure latency).
//
// The parallel sides run twice: bare, two goroutines doing nothing but
// admitting, and "parallel-work", where each admitted request holds its
// slot through workSteps steps of a xorshift (a few hundred nanoseconds), as
// a request does; the "none" side is the work alone, without admission.
// Bare, both goroutines contend for one cache line on every operation;
// with work between admission and release the line is contended only as
// often as a real handler would contend it. Run it for a second a run or
// more (-benchtime 1s): a bare parallel run of a few milliseconds
// (500000x) measures mostly how the run starts.
func BenchmarkAcquireRelease(b *testing.B) {
	const slots = 1 << 20 // never reached: every request is admitted
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	throttled := func(b *testing.B, p degrade.Policy) *degrade.Controller {
		ctl := degrade.MustNew(degrade.Options{Functions: []string{"f"}})
		if err := ctl.Set("f", p, "bench", until); err != nil {
			b.Fatal(err)
		}
		return ctl
	}
	sides := []struct {
		name string
		op   func(b *testing.B) func(work int)
	}{
		{"none", func(b *testing.B) func(work int) {
			return busy // no admission at all: the floor the others are read against
		}},
		{"atomic-counter", func(b *testing.B) func(work int) {
			// One shared counter, up on admission and down on release, and
			// nothing else: the least any admission that counts what is in
			// flight (a concurrency limit must) can cost.
			var n atomic.Int64
			return func(work int) {
				n.Add(1)
				busy(work)
				n.Add(-1)
			}
		}},
		{"semaphore/try-acquire-release", func(b *testing.B) func(work int) {
			s := semaphore.NewWeighted(slots)
			return func(work int) {
				if s.TryAcquire(1) {
					busy(work)
					s.Release(1)
				}
			}
		}},
		{"semaphore/acquire-release", func(b *testing.B) func(work int) {
			s := semaphore.NewWeighted(slots)
			return func(work int) {
				if s.Acquire(ctx, 1) == nil {
					busy(work)
					s.Release(1)
				}
			}
		}},
		{"degrade/throttle-concurrency", func(b *testing.B) func(work int) {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: slots})
			return func(work int) {
				if release, err := ctl.Acquire("f"); err == nil {
					busy(work)
					release()
				}
			}
		}},
		{"degrade/handle-throttle-concurrency", func(b *testing.B) func(work int) {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: slots})
			h, err := ctl.Handle("f")
			if err != nil {
				b.Fatal(err)
			}
			return func(work int) {
				if release, err := h.Acquire(); err == nil {
					busy(work)
					release()
				}
			}
		}},
		{"degrade/handle-normal", func(b *testing.B) func(work int) {
			ctl := degrade.MustNew(degrade.Options{Functions: []string{"f"}})
			h, err := ctl.Handle("f")
			if err != nil {
				b.Fatal(err)
			}
			return func(work int) {
				if release, err := h.Acquire(); err == nil {
					busy(work)
					release()
				}
			}
		}},
		{"degrade/normal", func(b *testing.B) func(work int) {
			ctl := degrade.MustNew(degrade.Options{Functions: []string{"f"}})
			return func(work int) {
				if release, err := ctl.Acquire("f"); err == nil {
					busy(work)
					release()
				}
			}
		}},
		{"degrade/throttle-adaptive", func(b *testing.B) func(work int) {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, Adaptive: true, MaxConcurrent: slots})
			return func(work int) {
				if release, err := ctl.Acquire("f"); err == nil {
					busy(work)
					release()
				}
			}
		}},
	}
	for _, side := range sides {
		b.Run("serial/"+side.name, func(b *testing.B) {
			op := side.op(b)
			b.ReportAllocs()
			for b.Loop() {
				op(0)
			}
		})
		for _, par := range []struct {
			name string
			work int
		}{{"parallel/", 0}, {"parallel-work/", workSteps}} {
			b.Run(par.name+side.name, func(b *testing.B) {
				op := side.op(b)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op(par.work)
					}
				})
			})
		}
	}
}

// workSteps is how many xorshift steps busy takes for "parallel-work"; the
// "none" side measures what they cost.
const workSteps = 200

// busy stands for a request's work while it holds its slot: n dependent
// xorshift steps on a local value.
func busy(n int) {
	if n == 0 {
		return
	}
	x := uint64(n) | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	if x == 0 { // never: xorshift keeps a non-zero state non-zero; keeps the loop live
		panic("busy: xorshift reached zero")
	}
}
