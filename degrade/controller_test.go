package degrade

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUnsetFunctionIsNormal(t *testing.T) {
	ctl := MustNew(Options{})
	release, err := ctl.Acquire("never-set")
	if err != nil || release == nil {
		t.Fatalf("Acquire(never-set) = release nil? %t, %v; want admitted", release == nil, err)
	}
	release()
	if err := ctl.Allow("never-set"); err != nil {
		t.Fatalf("Allow(never-set) = %v", err)
	}
	if st := ctl.Status(); len(st) != 0 {
		t.Fatalf("Status() = %+v, want nothing for functions never set", st)
	}
}

func TestDisableWindowAndExpiry(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	evs := events(t, ctl)
	start := clk.Now()
	until := start.Add(10 * time.Minute)
	if err := ctl.Set("search", Policy{Mode: Disable}, "the data plane is being updated", until); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, evs)
	want := Event{Function: "search", Cause: CauseSet, From: Normal, To: Disable, Policy: Policy{Mode: Disable},
		Reason: "the data plane is being updated", At: start, Until: until}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Fatalf("set event (-want +got):\n%s", diff)
	}
	if got := ctl.DegradedFunctions(); got != "search" {
		t.Fatalf("DegradedFunctions() = %q", got)
	}

	clk.Advance(4 * time.Minute)
	_, err := ctl.Acquire("search")
	var rej *RejectedError
	if !errors.Is(err, ErrDisabled) || !errors.As(err, &rej) {
		t.Fatalf("Acquire while disabled = %v, want ErrDisabled and *RejectedError", err)
	}
	if rej.RetryAfter != 6*time.Minute || rej.RetryAfterSeconds() != 360 || !rej.Until.Equal(until) || rej.Mode != Disable {
		t.Fatalf("rejection = %+v, want retry after 6m until %v", rej, until)
	}
	for _, word := range []string{`"search"`, "temporarily unavailable", "the data plane is being updated", "22:10:00", "360 seconds"} {
		if !strings.Contains(rej.Message(), word) {
			t.Errorf("message %q lacks %q", rej.Message(), word)
		}
	}
	if err := ctl.Allow("search"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Allow while disabled = %v", err)
	}

	// At the deadline the window ends by itself: Status sees it at once.
	clk.Advance(6 * time.Minute)
	st := ctl.Status()
	if len(st) != 1 || st[0].Mode != Normal || !st[0].Since.Equal(until) {
		t.Fatalf("Status after deadline = %+v, want search Normal since %v", st, until)
	}
	ev = nextEvent(t, evs)
	if ev.Cause != CauseExpired || ev.From != Disable || ev.To != Normal || !ev.At.Equal(until) {
		t.Fatalf("expiry event = %+v", ev)
	}
	if _, err := ctl.Acquire("search"); err != nil {
		t.Fatalf("Acquire after the window = %v", err)
	}
	if got := ctl.DegradedFunctions(); got != "" {
		t.Fatalf("DegradedFunctions() after expiry = %q", got)
	}
}

func TestExpiryNoticedByRequest(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	evs := events(t, ctl)
	if err := ctl.Set("upload", Policy{Mode: Disable}, "", clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, evs)
	clk.Advance(time.Second)
	release, err := ctl.Acquire("upload")
	if err != nil {
		t.Fatalf("Acquire at the deadline = %v, want admitted", err)
	}
	release()
	// The request asked for the window's end in the background.
	if ev := nextEvent(t, evs); ev.Cause != CauseExpired || ev.Function != "upload" {
		t.Fatalf("event after deadline = %+v, want upload expired", ev)
	}
}

func TestExpiryByRealTimer(t *testing.T) {
	ctl := MustNew(Options{})
	evs := events(t, ctl)
	if err := ctl.Set("report", Policy{Mode: Disable}, "maintenance", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, evs) // set
	// No request and no Status call: the window's own timer ends it.
	if ev := nextEvent(t, evs); ev.Cause != CauseExpired || ev.Function != "report" {
		t.Fatalf("event = %+v, want report expired", ev)
	}
	if st := ctl.Status(); st[0].Mode != Normal {
		t.Fatalf("Status = %+v", st)
	}
}

func TestSetErrors(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Functions: []string{"search", "upload"}})
	later := clk.Now().Add(time.Minute)
	cases := []struct {
		name     string
		function string
		policy   Policy
		reason   string
		until    time.Time
		want     error
		mentions string
	}{
		{"empty name", "", Policy{Mode: Disable}, "", later, ErrUnknownFunction, "empty"},
		{"undeclared", "billing", Policy{Mode: Disable}, "", later, ErrUnknownFunction, `"billing"`},
		{"comma", "a,b", Policy{Mode: Disable}, "", later, ErrUnknownFunction, "comma"},
		{"control char", "se\narch", Policy{Mode: Disable}, "", later, ErrUnknownFunction, "non-printable"},
		{"negative rate", "search", Policy{Mode: Throttle, RatePerSecond: -5}, "", later, ErrInvalidPolicy, "RatePerSecond"},
		{"zero throttle", "search", Policy{Mode: Throttle}, "", later, ErrInvalidPolicy, "throttle needs"},
		{"window passed", "search", Policy{Mode: Disable}, "", clk.Now().Add(-time.Second), ErrWindowPassed, "not after now"},
		{"window now", "search", Policy{Mode: Disable}, "", clk.Now(), ErrWindowPassed, "not after now"},
		{"zero until", "search", Policy{Mode: Disable}, "", time.Time{}, ErrWindowPassed, "not after now"},
		{"window too long", "search", Policy{Mode: Disable}, "", clk.Now().Add(DefaultMaxWindow + time.Second), ErrWindowTooLong, "MaxWindow"},
		{"reason control char", "search", Policy{Mode: Disable}, "bad\x00reason", later, ErrInvalidPolicy, "reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ctl.Set(tc.function, tc.policy, tc.reason, tc.until)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mentions) || !strings.HasPrefix(err.Error(), "degrade: ") {
				t.Fatalf("Set = %v, want %v mentioning %q", err, tc.want, tc.mentions)
			}
		})
	}
	for _, st := range ctl.Status() {
		if st.Mode != Normal {
			t.Fatalf("a failed Set changed %+v", st)
		}
	}
	if err := ctl.Clear("billing"); !errors.Is(err, ErrUnknownFunction) {
		t.Fatalf("Clear(undeclared) = %v", err)
	}
	if err := ctl.Clear("search"); err != nil {
		t.Fatalf("Clear(declared, normal) = %v", err)
	}
	if err := MustNew(Options{}).Clear("never"); !errors.Is(err, ErrUnknownFunction) {
		t.Fatalf("Clear(never set) = %v", err)
	}
	if err := MustNew(Options{}).Set("never", Policy{Mode: Normal}, "", later); err != nil {
		t.Fatalf("Set(never set, Normal) = %v, want nil", err)
	}
}

func TestNewControllerRejectsBadOptions(t *testing.T) {
	cases := map[string]Options{
		"Functions[1]":     {Functions: []string{"a", ""}},
		"listed twice":     {Functions: []string{"a", "a"}},
		"MinLimit":         {Adaptive: AdaptiveOptions{MinLimit: -1}},
		"MaxLimit":         {Adaptive: AdaptiveOptions{MinLimit: 5, MaxLimit: 2}},
		"InitialLimit":     {Adaptive: AdaptiveOptions{InitialLimit: 5000}},
		"LatencyTolerance": {Adaptive: AdaptiveOptions{LatencyTolerance: 0.5}},
		"Backoff":          {Adaptive: AdaptiveOptions{Backoff: 1.5}},
		"PressureFull":     {Adaptive: AdaptiveOptions{PressureThreshold: 50, PressureFull: 40}},
		"PressureInterval": {PressureInterval: -time.Second},
		"MaxWindow":        {MaxWindow: -time.Second},
	}
	for field, opts := range cases {
		if _, err := New(opts); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("NewController with bad %s = %v, want an error naming it", field, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New with bad options did not panic")
		}
	}()
	MustNew(Options{Functions: []string{""}})
}

func TestThrottleConcurrency(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	// Two requests in flight before the throttle count against it.
	r1, _ := ctl.Acquire("search") // never set: not counted
	r1()
	if err := ctl.Set("search", Policy{Mode: Throttle, MaxConcurrent: 2}, "update", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a, err := ctl.Acquire("search")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ctl.Acquire("search")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ctl.Acquire("search")
	var rej *RejectedError
	if !errors.Is(err, ErrThrottled) || !errors.As(err, &rej) || rej.RetryAfter != retryBusy {
		t.Fatalf("third Acquire = %v, want ErrThrottled with retry %v", err, retryBusy)
	}
	if err := ctl.Allow("search"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Allow at the limit = %v", err)
	}
	if st := ctl.Status(); st[0].InFlight != 2 || st[0].Limit != 2 {
		t.Fatalf("Status = %+v, want 2 in flight, limit 2", st)
	}
	a()
	c, err := ctl.Acquire("search")
	if err != nil {
		t.Fatalf("Acquire after a release = %v", err)
	}
	// Requests admitted under the throttle stay counted after a mode change.
	if err := ctl.Set("search", Policy{Mode: Throttle, MaxConcurrent: 3}, "update", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := ctl.Acquire("search")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Acquire("search"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fourth in flight under limit 3 = %v", err)
	}
	b()
	c()
	d()
	if st := ctl.Status(); st[0].InFlight != 0 {
		t.Fatalf("in flight after all releases = %d", st[0].InFlight)
	}
}

func TestThrottleRate(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	if err := ctl.Set("search", Policy{Mode: Throttle, RatePerSecond: 2, Burst: 2}, "update", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := ctl.Allow("search"); err != nil {
			t.Fatalf("request %d of burst: %v", i, err)
		}
	}
	err := ctl.Allow("search")
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrThrottled) || rej.RetryAfter != 500*time.Millisecond || rej.RetryAfterSeconds() != 1 {
		t.Fatalf("over the rate = %v, want throttled, retry 500ms (header 1s)", err)
	}
	clk.Advance(500 * time.Millisecond)
	release, err := ctl.Acquire("search")
	if err != nil {
		t.Fatalf("after 500ms = %v", err)
	}
	if _, err := ctl.Acquire("search"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Acquire over the rate = %v, want ErrThrottled", err)
	}
	release()
	if st := ctl.Status(); st[0].InFlight != 0 {
		t.Fatalf("in flight = %d after a refused Acquire, want 0", st[0].InFlight)
	}
}

func TestShedByPriority(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	if err := ctl.Set("feed", Policy{Mode: Shed, ShedFraction: 0.5}, "update", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	counts := map[Priority]int{}
	for range 100 {
		for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh} {
			release, err := ctl.AcquirePriority("feed", p)
			if err != nil {
				if !errors.Is(err, ErrShed) {
					t.Fatalf("rejection %v, want ErrShed", err)
				}
				counts[p]++
				continue
			}
			release()
		}
	}
	if counts[PriorityLow] != 100 || counts[PriorityNormal] != 50 || counts[PriorityHigh] != 0 {
		t.Fatalf("shed counts by priority = %v, want low 100, normal 50, high 0", counts)
	}
}

func TestSetReplacesAndClear(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Functions: []string{"b", "a"}})
	evs := events(t, ctl)
	until := clk.Now().Add(time.Hour)
	if err := ctl.Set("a", Policy{Mode: Disable}, "first", until); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Set("a", Policy{Mode: Shed, ShedFraction: 0.3}, "second", until.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Set("b", Policy{Mode: Throttle, RatePerSecond: 5}, "third", until); err != nil {
		t.Fatal(err)
	}
	if got := ctl.DegradedFunctions(); got != "a, b" {
		t.Fatalf("DegradedFunctions() = %q", got)
	}
	if err := ctl.Set("b", Policy{Mode: Normal}, "", until); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Clear("a"); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Clear("a"); err != nil { // already normal: no error, no event
		t.Fatal(err)
	}
	var got []string
	for range 5 {
		ev := nextEvent(t, evs)
		got = append(got, ev.Function+":"+ev.Cause.String()+":"+ev.From.String()+">"+ev.To.String())
	}
	want := []string{"a:set:normal>disable", "a:set:disable>shed", "b:set:normal>throttle", "b:clear:throttle>normal", "a:clear:shed>normal"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	select {
	case ev := <-evs:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	st := ctl.Status()
	if len(st) != 2 || st[0].Function != "a" || st[1].Function != "b" || st[0].Mode != Normal || st[1].Mode != Normal {
		t.Fatalf("Status = %+v, want a and b, sorted, normal", st)
	}
}

func TestSubscriberMayCallController(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now})
	var seen []string
	var cancel func()
	cancel = ctl.Subscribe(func(ev Event) {
		seen = append(seen, ev.Function+":"+ev.To.String())
		if ev.Function == "a" && ev.To == Disable {
			// A subscriber reacting with another change: queued, not deadlocked.
			if err := ctl.Set("b", Policy{Mode: Disable}, "follows a", clk.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			}
			_ = ctl.Status()
		}
		if ev.Function == "b" {
			cancel()
		}
	})
	if err := ctl.Set("a", Policy{Mode: Disable}, "", clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Clear("a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a:disable", "b:disable"}, seen); diff != "" {
		t.Fatalf("events seen (-want +got):\n%s", diff)
	}
}

func TestSubscriberPanicIsRecovered(t *testing.T) {
	clk := newFakeClock()
	var logs strings.Builder
	ctl := MustNew(Options{Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cancel := ctl.Subscribe(func(Event) { panic("subscriber bug") })
	var after []Cause
	ctl.Subscribe(func(ev Event) { after = append(after, ev.Cause) })
	if err := ctl.Set("a", Policy{Mode: Disable}, "", clk.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Set with a panicking subscriber = %v, want nil", err)
	}
	if mode := ctl.Status()[0].Mode; mode != Disable {
		t.Fatalf("mode after Set with a panicking subscriber = %s, want disable", mode)
	}
	if !strings.Contains(logs.String(), "subscriber bug") || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("panic not logged at Error; log:\n%s", logs.String())
	}
	if got := ctl.subscriberPanics.Load(); got != 1 {
		t.Errorf("subscriber panics counted = %d, want 1", got)
	}
	cancel()
	evs := events(t, ctl)
	if err := ctl.Clear("a"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs); ev.Cause != CauseClear {
		t.Fatalf("event after a panicking subscriber = %+v", ev)
	}
	if diff := cmp.Diff([]Cause{CauseSet, CauseClear}, after); diff != "" {
		t.Errorf("events seen by the subscriber after the panicking one (-want +got):\n%s", diff)
	}
}

// TestConcurrentModeChanges runs traffic while modes flip; under -race it
// checks the hot path against Set/Clear/Status, and that every admitted
// request is released. Modes keep flipping until traffic has seen both
// admissions and rejections (the scheduler decides when workers run).
func TestConcurrentModeChanges(t *testing.T) {
	ctl := MustNew(Options{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var admitted, rejected atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				release, err := ctl.AcquirePriority("f", Priority(g%3-1))
				if err != nil {
					var rej *RejectedError
					if !errors.As(err, &rej) {
						t.Errorf("rejection of type %T", err)
						return
					}
					rejected.Add(1)
					continue
				}
				admitted.Add(1)
				release()
			}
		})
	}
	policies := []Policy{
		{Mode: Disable},
		{Mode: Throttle, MaxConcurrent: 1},
		{Mode: Throttle, RatePerSecond: 1000, Burst: 5},
		{Mode: Throttle, Adaptive: true, MaxConcurrent: 3},
		{Mode: Shed, ShedFraction: 0.5},
	}
	const minFlips, maxFlips = 300, 1_000_000
	i := 0
	for ; i < maxFlips && (i < minFlips || admitted.Load() == 0 || rejected.Load() == 0); i++ {
		if err := ctl.Set("f", policies[i%len(policies)], "flip", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ctl.ObservePressure(float64(i % 70))
		if i%7 == 0 {
			if err := ctl.Clear("f"); err != nil {
				t.Fatal(err)
			}
		}
		_ = ctl.Status()
	}
	close(stop)
	wg.Wait()
	st := ctl.Status()
	if st[0].InFlight != 0 {
		t.Fatalf("in flight after all releases = %d", st[0].InFlight)
	}
	if admitted.Load() == 0 || rejected.Load() == 0 {
		t.Fatalf("after %d mode changes: admitted %d, rejected %d; want both", i, admitted.Load(), rejected.Load())
	}
}

func TestMaxWindowOption(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, MaxWindow: 72 * time.Hour})
	must(t, ctl.Set("f", Policy{Mode: Disable}, "long migration", clk.Now().Add(48*time.Hour)))
	if err := ctl.Set("f", Policy{Mode: Disable}, "", clk.Now().Add(73*time.Hour)); !errors.Is(err, ErrWindowTooLong) {
		t.Fatalf("Set beyond MaxWindow = %v", err)
	}
}

// TestAdaptiveThroughController drives an adaptive throttle by request
// latencies measured on the controller's clock.
func TestAdaptiveThroughController(t *testing.T) {
	clk := newFakeClock()
	ctl := MustNew(Options{Clock: clk.Now, Adaptive: AdaptiveOptions{InitialLimit: 4, MinLimit: 1}})
	must(t, ctl.Set("batch", Policy{Mode: Throttle, Adaptive: true, MaxConcurrent: 64}, "update", clk.Now().Add(time.Hour)))
	limit := func() int { return ctl.Status()[0].Limit }
	// Fast requests that fill the limit: it grows.
	for range 50 {
		var releases []func()
		for range limit() {
			r, err := ctl.Acquire("batch")
			must(t, err)
			releases = append(releases, r)
		}
		if _, err := ctl.Acquire("batch"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Acquire beyond the adaptive limit %d = %v", limit(), err)
		}
		clk.Advance(10 * time.Millisecond)
		for _, r := range releases {
			r()
		}
	}
	grown := limit()
	if grown <= 4 {
		t.Fatalf("adaptive limit after fast full rounds = %d, want above 4", grown)
	}
	// The function slows down fivefold: the limit backs off.
	for range 20 {
		r, err := ctl.Acquire("batch")
		must(t, err)
		clk.Advance(50 * time.Millisecond)
		r()
	}
	if got := limit(); got >= grown {
		t.Fatalf("adaptive limit after slow requests = %d, want below %d", got, grown)
	}
	if st := ctl.Status()[0]; st.InFlight != 0 {
		t.Fatalf("in flight = %d", st.InFlight)
	}
}

// TestAdmissionReadsNoClock checks that requests admitted under windows
// that are not time-limited (a concurrency-only throttle, a shed that keeps
// the request) read no clock, that a refusal does, and that a refusal after
// the deadline (before the window's timer) admits instead.
func TestAdmissionReadsNoClock(t *testing.T) {
	clk := newFakeClock()
	var reads atomic.Int64
	ctl := MustNew(Options{Clock: func() time.Time { reads.Add(1); return clk.Now() }})
	until := clk.Now().Add(time.Minute)
	if err := ctl.Set("f", Policy{Mode: Throttle, MaxConcurrent: 2}, "", until); err != nil {
		t.Fatal(err)
	}
	before := reads.Load()
	r1, err1 := ctl.Acquire("f")
	r2, err2 := ctl.Acquire("f")
	if err1 != nil || err2 != nil {
		t.Fatalf("Acquire within the limit = %v, %v", err1, err2)
	}
	if got := reads.Load() - before; got != 0 {
		t.Fatalf("two admissions under a concurrency-only throttle read the clock %d times, want 0", got)
	}
	if _, err := ctl.Acquire("f"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("Acquire over the limit = %v, want ErrThrottled", err)
	}
	if got := reads.Load() - before; got != 1 {
		t.Fatalf("a refusal read the clock %d times, want 1", got)
	}
	clk.Advance(2 * time.Minute) // past the deadline; the real timer has not fired
	r3, err := ctl.Acquire("f")
	if err != nil {
		t.Fatalf("Acquire over the limit after the deadline = %v, want admitted", err)
	}
	r1()
	r2()
	r3()
	if s := ctl.Status()[0]; s.Mode != Normal || s.InFlight != 0 {
		t.Fatalf("after the deadline: %+v, want Normal with nothing in flight", s)
	}
}
