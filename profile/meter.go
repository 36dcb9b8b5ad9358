package profile

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// MeterOptions configure a [Meter]. Zero fields mean the documented
// defaults.
type MeterOptions struct {
	// Clock returns the current time for latency and sample times; nil
	// means time.Now.
	Clock func() time.Time
}

// Meter is the in-process meter for functions that are goroutines inside
// the host binary. Wrap each unit of work with [Meter.Track]; report state
// written with [Meter.Wrote]. As a [Collector] it returns, per function
// seen since the previous Collect, the CPU cores its tracked work used
// (thread CPU time over wall time), its calls, their mean latency and the
// state bytes written.
//
// All methods are safe for concurrent use. The zero value is not usable;
// call [NewMeter].
type Meter struct {
	clock func() time.Time

	mu    sync.Mutex // guards the fields below
	since time.Time  // start of the interval the accumulators cover
	acc   map[string]*meterAccumulator
}

type meterAccumulator struct {
	cpu        time.Duration
	calls      int64
	latency    time.Duration
	stateBytes int64
}

var _ Collector = (*Meter)(nil)

// NewMeter returns a Meter.
func NewMeter(opts MeterOptions) *Meter {
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Meter{clock: clock, since: clock(), acc: make(map[string]*meterAccumulator)}
}

// Track starts measuring one unit of work of function and returns the func
// that ends it; call done exactly once, from the same goroutine, when the
// work is finished (typically `defer m.Track("routes")()`). Between the two
// the goroutine is locked to its OS thread so that the thread CPU time read
// at both ends belongs to this work alone; on systems without a per-thread
// CPU clock the CPU measured is the elapsed time. The lock has a cost: if
// the tracked work blocks, its thread waits with it and the runtime starts
// another for other goroutines, so track units of work, not long waits.
func (m *Meter) Track(function string) (done func()) {
	runtime.LockOSThread()
	start := m.clock()
	cpu0, cpuOK := threadCPUTime()
	var once sync.Once
	return func() {
		once.Do(func() {
			cpu1, ok := threadCPUTime()
			runtime.UnlockOSThread()
			elapsed := m.clock().Sub(start)
			cpu := elapsed
			if ok && cpuOK {
				cpu = cpu1 - cpu0
			}
			m.mu.Lock()
			a := m.accumulator(function)
			a.cpu += max(cpu, 0)
			a.calls++
			a.latency += max(elapsed, 0)
			m.mu.Unlock()
		})
	}
}

// Wrote records that function wrote n bytes of state (what a snapshot
// would have to carry). Negative n is ignored.
func (m *Meter) Wrote(function string, n int64) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	m.accumulator(function).stateBytes += n
	m.mu.Unlock()
}

func (m *Meter) accumulator(function string) *meterAccumulator {
	a := m.acc[function]
	if a == nil {
		a = &meterAccumulator{}
		m.acc[function] = a
	}
	return a
}

// Collect returns one sample per function tracked since the previous
// Collect, sorted by function, and starts a new interval. Functions with
// no activity in the interval are not reported.
func (m *Meter) Collect(ctx context.Context) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("profile: meter collect: %w", err)
	}
	m.mu.Lock()
	now := m.clock()
	interval := now.Sub(m.since)
	acc := m.acc
	m.acc = make(map[string]*meterAccumulator, len(acc))
	m.since = now
	m.mu.Unlock()

	out := make([]Sample, 0, len(acc))
	for name, a := range acc {
		s := Sample{Function: name, Time: now, Interval: interval, Calls: a.calls, StateBytes: a.stateBytes, Usage: hal.Vector{}}
		if interval > 0 {
			s.Usage[hal.CPU] = a.cpu.Seconds() / interval.Seconds()
		}
		if a.calls > 0 {
			s.Latency = a.latency / time.Duration(a.calls)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y Sample) int {
		if x.Function < y.Function {
			return -1
		}
		if x.Function > y.Function {
			return 1
		}
		return 0
	})
	return out, nil
}
