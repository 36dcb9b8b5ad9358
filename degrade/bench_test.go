package degrade_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
		op   func(b *testing.B) func()
	}{
		{"semaphore/try-acquire-release", func(b *testing.B) func() {
			s := semaphore.NewWeighted(slots)
			return func() {
				if s.TryAcquire(1) {
					s.Release(1)
				}
			}
		}},
		{"semaphore/acquire-release", func(b *testing.B) func() {
			s := semaphore.NewWeighted(slots)
			return func() {
				if s.Acquire(ctx, 1) == nil {
					s.Release(1)
				}
			}
		}},
		{"degrade/throttle-concurrency", func(b *testing.B) func() {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: slots})
			return func() {
				if release, err := ctl.Acquire("f"); err == nil {
					release()
				}
			}
		}},
		{"degrade/handle-throttle-concurrency", func(b *testing.B) func() {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, MaxConcurrent: slots})
			h, err := ctl.Handle("f")
			if err != nil {
				b.Fatal(err)
			}
			return func() {
				if release, err := h.Acquire(); err == nil {
					release()
				}
			}
		}},
		{"degrade/handle-normal", func(b *testing.B) func() {
			ctl := degrade.MustNew(degrade.Options{Functions: []string{"f"}})
			h, err := ctl.Handle("f")
			if err != nil {
				b.Fatal(err)
			}
			return func() {
				if release, err := h.Acquire(); err == nil {
					release()
				}
			}
		}},
		{"degrade/normal", func(b *testing.B) func() {
			ctl := degrade.MustNew(degrade.Options{Functions: []string{"f"}})
			return func() {
				if release, err := ctl.Acquire("f"); err == nil {
					release()
				}
			}
		}},
		{"degrade/throttle-adaptive", func(b *testing.B) func() {
			ctl := throttled(b, degrade.Policy{Mode: degrade.Throttle, Adaptive: true, MaxConcurrent: slots})
			return func() {
				if release, err := ctl.Acquire("f"); err == nil {
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
				op()
			}
		})
		b.Run("parallel/"+side.name, func(b *testing.B) {
			op := side.op(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					op()
				}
			})
		})
	}
}
