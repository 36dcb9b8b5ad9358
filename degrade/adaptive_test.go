package degrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestLimit(t *testing.T, opts AdaptiveOptions, maxConcurrent int) (*adaptiveLimit, *pressureFactor) {
	t.Helper()
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var f pressureFactor
	return newAdaptiveLimit(o, maxConcurrent, &f, nil), &f
}

func TestAdaptiveGrowsWhileFastAndBusy(t *testing.T) {
	l, _ := newTestLimit(t, AdaptiveOptions{InitialLimit: 4}, 0)
	now := int64(0)
	for range 200 {
		now += int64(time.Millisecond)
		l.observe(10*time.Millisecond, l.limit(), now) // fast and using the whole limit
	}
	if got := l.limit(); got <= 4 {
		t.Fatalf("limit after 200 fast busy requests = %d, want above the initial 4", got)
	}
	idle, _ := newTestLimit(t, AdaptiveOptions{InitialLimit: 4}, 0)
	for range 200 {
		idle.observe(10*time.Millisecond, 1, 0) // fast but the limit is not in use
	}
	if got := idle.limit(); got != 4 {
		t.Fatalf("limit grew to %d while barely used, want 4", got)
	}
}

func TestAdaptiveBacksOffOnLatency(t *testing.T) {
	l, _ := newTestLimit(t, AdaptiveOptions{InitialLimit: 20, MinLimit: 2}, 0)
	now := int64(0)
	l.observe(10*time.Millisecond, 20, now) // baseline 10ms
	now += int64(time.Second)
	l.observe(50*time.Millisecond, 20, now) // 5x slower: back off
	if got := l.limit(); got != 18 {
		t.Fatalf("limit after one slow request = %d, want 20*0.9 = 18", got)
	}
	l.observe(50*time.Millisecond, 20, now+1) // within the same latency: no second cut
	if got := l.limit(); got != 18 {
		t.Fatalf("limit cut twice within one latency: %d", got)
	}
	for range 100 {
		now += int64(time.Second)
		l.observe(50*time.Millisecond, 20, now)
	}
	if got := l.limit(); got != 2 {
		t.Fatalf("limit after sustained slowness = %d, want the floor 2", got)
	}
}

func TestAdaptiveCeilingAndBaselineReset(t *testing.T) {
	l, _ := newTestLimit(t, AdaptiveOptions{InitialLimit: 50, BaselineSamples: 10}, 8)
	if got := l.limit(); got != 8 {
		t.Fatalf("initial limit = %d, want capped by MaxConcurrent 8", got)
	}
	for range 100 {
		l.observe(time.Millisecond, 8, 0)
	}
	if got := l.limit(); got != 8 {
		t.Fatalf("limit = %d, want never above MaxConcurrent 8", got)
	}
	// The function got slower for good (after a change): after a baseline
	// window the new latency is the baseline and the limit grows again.
	now := int64(time.Hour)
	for range 30 {
		now += int64(time.Second)
		l.observe(20*time.Millisecond, l.limit(), now)
	}
	if l.baseline != 20*time.Millisecond {
		t.Fatalf("baseline = %v after a window of 20ms requests, want 20ms", l.baseline)
	}
}

func TestAdaptivePressureTightens(t *testing.T) {
	l, f := newTestLimit(t, AdaptiveOptions{InitialLimit: 100, MinLimit: 2}, 0)
	opts := l.opts
	for percent, want := range map[float64]float64{0: 1, 10: 1, 35: 0.5, 60: 0, 95: 0} {
		if got := opts.pressureFactor(percent); got != want {
			t.Errorf("pressureFactor(%v) = %v, want %v", percent, got, want)
		}
	}
	f.store(opts.pressureFactor(35))
	l.repressure()
	if got := l.limit(); got != 50 {
		t.Fatalf("limit at 35%% pressure = %d, want 50", got)
	}
	f.store(opts.pressureFactor(80))
	l.repressure()
	if got := l.limit(); got != 2 {
		t.Fatalf("limit at 80%% pressure = %d, want MinLimit 2", got)
	}
}

func TestControllerObservePressure(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Adaptive: AdaptiveOptions{InitialLimit: 40}})
	if err := ctl.Set("batch", Policy{Mode: Throttle, Adaptive: true}, "update", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := ctl.Status(); st[0].Limit != 40 {
		t.Fatalf("limit = %d, want 40", st[0].Limit)
	}
	ctl.ObservePressure(35)
	if st := ctl.Status(); st[0].Limit != 20 || ctl.PressureFactor() != 0.5 {
		t.Fatalf("limit under 35%% pressure = %d (factor %v), want 20", st[0].Limit, ctl.PressureFactor())
	}
	ctl.ObservePressure(0)
	if st := ctl.Status(); st[0].Limit != 40 {
		t.Fatalf("limit after pressure went = %d, want 40", st[0].Limit)
	}
}

// countingPressure signals every reading on reads.
type countingPressure struct {
	StaticPressure
	reads chan struct{}
}

func (c *countingPressure) Pressure(ctx context.Context) (float64, error) {
	defer func() { c.reads <- struct{}{} }()
	return c.StaticPressure.Pressure(ctx)
}

func TestRunAppliesPressure(t *testing.T) {
	src := &countingPressure{reads: make(chan struct{})}
	src.Set(60)
	ctl := MustNew(Options{Pressure: src, PressureInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ctl.Run(ctx) }()
	<-src.reads
	<-src.reads // the second reading starts after the first was applied
	if got := ctl.PressureFactor(); got != 0 {
		t.Fatalf("factor after 60%% pressure = %v, want 0", got)
	}
	cancel()
	go func() {
		for range src.reads { // drain a reading racing with cancel
		}
	}()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	close(src.reads)
	if err := MustNew(Options{}).Run(context.Background()); err == nil {
		t.Fatal("Run without a pressure source returned nil")
	}
}

func TestPSIFixtures(t *testing.T) {
	p, err := NewPSI("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Pressure(context.Background())
	if err != nil || got != 35 {
		t.Fatalf("Pressure() = %v, %v; want the memory some avg10 35", got, err)
	}
	p, err = NewPSI("testdata/proc", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Pressure(context.Background()); got != 12.5 {
		t.Fatalf("cpu-only Pressure() = %v, want 12.5", got)
	}
	if _, err := NewPSI("testdata/proc-nopsi"); err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Fatalf("NewPSI without pressure files = %v, want an error naming cpu", err)
	}
	if _, err := NewPSI("testdata/proc", "gpu"); err == nil || !strings.Contains(err.Error(), "gpu") {
		t.Fatalf("NewPSI(gpu) = %v, want an error naming gpu", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Pressure(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pressure(cancelled) = %v", err)
	}
}

func TestPSIRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skipf("this kernel has no PSI (/proc/pressure/cpu: %v)", err)
	}
	p, err := NewPSI("/proc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Pressure(context.Background())
	if err != nil || got < 0 || got > 100 {
		t.Fatalf("real PSI = %v, %v; want a percentage", got, err)
	}
}

func FuzzPSI(f *testing.F) {
	for _, name := range []string{"cpu", "memory", "io"} {
		b, err := os.ReadFile(filepath.Join("testdata/proc/pressure", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("some avg10=NaN avg60=0 avg300=0 total=0\n"))
	f.Add([]byte("some avg10=250 avg60=0 avg300=0 total=0\n"))
	f.Add([]byte("full avg10=1 avg60=0 avg300=0 total=0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, content []byte) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "pressure"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "pressure", "cpu"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := NewPSI(root, "cpu")
		if err != nil {
			return // rejected up front: fine
		}
		got, err := p.Pressure(context.Background())
		if err == nil && (got < 0 || got > 100) {
			t.Fatalf("Pressure() = %v without error, want 0-100", got)
		}
	})
}
