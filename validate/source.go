package validate

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Source supplies the samples of one metric (latencies, throughput per
// second, queue depths) observed since the previous call: once before the
// update for the baseline, once after it for the comparison. A host wires
// it to its own measurements, to a profile.Profiler's meter, or to a
// [Recorder].
type Source interface {
	Samples(ctx context.Context) ([]float64, error)
}

// SourceFunc adapts a function to [Source].
type SourceFunc func(ctx context.Context) ([]float64, error)

// Samples calls f(ctx).
func (f SourceFunc) Samples(ctx context.Context) ([]float64, error) { return f(ctx) }

// CountSource supplies an event count and the number of trials it is out
// of (errors and requests) observed since the previous call.
type CountSource interface {
	Counts(ctx context.Context) (events, total int64, err error)
}

// CountFunc adapts a function to [CountSource].
type CountFunc func(ctx context.Context) (events, total int64, err error)

// Counts calls f(ctx).
func (f CountFunc) Counts(ctx context.Context) (int64, int64, error) { return f(ctx) }

// DefaultRecorderCapacity is the number of samples a [Recorder] keeps when
// built with capacity 0.
const DefaultRecorderCapacity = 100_000

// Recorder is the in-memory [Source]: the host calls Observe (or
// ObserveDuration) for every measurement, and Samples hands over and clears
// what was observed since the last call. It keeps the most recent capacity
// samples. A Recorder is safe for concurrent use; the zero value is not
// usable, build one with [NewRecorder].
type Recorder struct {
	mu       sync.Mutex
	buf      []float64 // ring of the last len(buf) samples; guarded by mu
	next     int       // index the next sample goes to; guarded by mu
	count    int       // samples held, ≤ len(buf); guarded by mu
	capacity int       // fixed at construction
}

var _ Source = (*Recorder)(nil)

// NewRecorder returns a Recorder keeping up to capacity samples
// (0 means [DefaultRecorderCapacity]). It panics if capacity is negative.
func NewRecorder(capacity int) *Recorder {
	if capacity < 0 {
		panic(fmt.Sprintf("validate: NewRecorder capacity %d is negative", capacity))
	}
	if capacity == 0 {
		capacity = DefaultRecorderCapacity
	}
	return &Recorder{capacity: capacity}
}

// Observe records one sample.
func (r *Recorder) Observe(v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]float64, 0, min(r.capacity, 1024))
	}
	if len(r.buf) < r.capacity {
		r.buf = append(r.buf, v)
		r.count = len(r.buf)
		return
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % r.capacity
}

// ObserveDuration records d in milliseconds.
func (r *Recorder) ObserveDuration(d time.Duration) {
	r.Observe(float64(d) / float64(time.Millisecond))
}

// Samples returns the samples observed since the last call, oldest first,
// and clears them.
func (r *Recorder) Samples(ctx context.Context) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("validate: recorder samples: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]float64, 0, r.count)
	out = append(out, r.buf[r.next:]...)
	out = append(out, r.buf[:r.next]...)
	r.buf, r.next, r.count = nil, 0, 0
	return out, nil
}

// Counter is the in-memory [CountSource]: the host calls Add per request
// (or AddN), and Counts hands over and clears the totals. Safe for
// concurrent use; the zero value is ready.
type Counter struct {
	mu     sync.Mutex
	events int64 // guarded by mu
	total  int64 // guarded by mu
}

var _ CountSource = (*Counter)(nil)

// Add records one trial, an event (an error) if event is true.
func (c *Counter) Add(event bool) {
	if event {
		c.AddN(1, 1)
		return
	}
	c.AddN(0, 1)
}

// AddN records total trials of which events were events.
func (c *Counter) AddN(events, total int64) {
	c.mu.Lock()
	c.events += events
	c.total += total
	c.mu.Unlock()
}

// Counts returns the events and trials since the last call and clears them.
func (c *Counter) Counts(ctx context.Context) (int64, int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("validate: counter counts: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, t := c.events, c.total
	c.events, c.total = 0, 0
	return e, t, nil
}
