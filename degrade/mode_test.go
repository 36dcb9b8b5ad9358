package degrade

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestModeStringAndParse(t *testing.T) {
	for _, m := range []Mode{Normal, Throttle, Disable, Shed} {
		got, err := ParseMode(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
		text, err := m.MarshalText()
		if err != nil || string(text) != m.String() {
			t.Errorf("%v.MarshalText() = %q, %v", m, text, err)
		}
	}
	if got := Mode(9).String(); got != "mode(9)" {
		t.Errorf("Mode(9).String() = %q", got)
	}
	if _, err := Mode(9).MarshalText(); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("Mode(9).MarshalText() error = %v, want ErrInvalidPolicy", err)
	}
	if _, err := ParseMode("off"); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), `"off"`) {
		t.Errorf("ParseMode(off) error = %v, want ErrInvalidPolicy naming the input", err)
	}
	var p Policy
	if err := json.Unmarshal([]byte(`{"mode":"shed","shedFraction":0.25}`), &p); err != nil || p.Mode != Shed || p.ShedFraction != 0.25 {
		t.Errorf("json decode policy = %+v, %v", p, err)
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]Priority{"low": PriorityLow, " HIGH ": PriorityHigh, "": PriorityNormal, "normal": PriorityNormal} {
		got, err := ParsePriority(in)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParsePriority("urgent"); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("ParsePriority(urgent) error = %v", err)
	}
}

func TestShedShareOrdersPriorities(t *testing.T) {
	for _, f := range []float64{0.1, 0.5, 0.7, 1} {
		low, normal, high := shedShare(f, PriorityLow), shedShare(f, PriorityNormal), shedShare(f, PriorityHigh)
		if !(low >= normal && normal >= high) || normal != f {
			t.Errorf("shedShare(%v) low=%v normal=%v high=%v: want low >= normal = f >= high", f, low, normal, high)
		}
	}
	// The documented behaviour: low and normal are dropped together, low
	// at twice the share, rather than strictly lowest first.
	if low, normal := shedShare(0.25, PriorityLow), shedShare(0.25, PriorityNormal); low != 0.5 || normal != 0.25 {
		t.Errorf("shedShare(0.25) low=%v normal=%v, want 0.5 and 0.25", low, normal)
	}
	if got := shedShare(0.5, PriorityHigh); got != 0 {
		t.Errorf("high priority shed at f=0.5 = %v, want 0", got)
	}
	if got := shedShare(0.5, PriorityLow); got != 1 {
		t.Errorf("low priority shed at f=0.5 = %v, want 1", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	valid := []Policy{
		{Mode: Normal},
		{Mode: Disable},
		{Mode: Throttle, RatePerSecond: 10},
		{Mode: Throttle, RatePerSecond: 0.5, Burst: 3},
		{Mode: Throttle, RatePerSecond: MinRatePerSecond, Burst: MaxBurst},
		{Mode: Throttle, RatePerSecond: MaxRatePerSecond},
		{Mode: Throttle, MaxConcurrent: 4},
		{Mode: Throttle, Adaptive: true},
		{Mode: Throttle, Adaptive: true, MaxConcurrent: 8, RatePerSecond: 100},
		{Mode: Shed, ShedFraction: 1},
		{Mode: Shed, ShedFraction: 0.01},
	}
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v, want nil", p, err)
		}
	}
	invalid := []struct {
		p     Policy
		field string // a word the error must contain
	}{
		{Policy{Mode: Mode(7)}, "mode"},
		{Policy{Mode: Mode(-1)}, "mode"},
		{Policy{Mode: Throttle}, "throttle needs"},
		{Policy{Mode: Throttle, RatePerSecond: -1}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: math.NaN()}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: math.Inf(1)}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: 1e-10}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: 5e-324}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: 1e10}, "RatePerSecond"},
		{Policy{Mode: Throttle, RatePerSecond: 1, Burst: MaxBurst + 1}, "Burst"},
		{Policy{Mode: Throttle, RatePerSecond: 1, Burst: -2}, "Burst"},
		{Policy{Mode: Throttle, MaxConcurrent: 2, Burst: 2}, "Burst"},
		{Policy{Mode: Throttle, MaxConcurrent: -3}, "MaxConcurrent"},
		{Policy{Mode: Throttle, MaxConcurrent: 3, ShedFraction: 0.5}, "ShedFraction"},
		{Policy{Mode: Shed}, "ShedFraction"},
		{Policy{Mode: Shed, ShedFraction: 1.5}, "ShedFraction"},
		{Policy{Mode: Shed, ShedFraction: -0.1}, "ShedFraction"},
		{Policy{Mode: Shed, ShedFraction: math.NaN()}, "ShedFraction"},
		{Policy{Mode: Normal, ShedFraction: 0.2}, "ShedFraction 0.2 is only for mode shed"},
		{Policy{Mode: Disable, ShedFraction: 0.2}, "ShedFraction 0.2 is only for mode shed"},
	}
	// Every Throttle-only field, set on every other mode, is refused by name.
	for _, mode := range []Mode{Normal, Disable, Shed} {
		shed := 0.0
		if mode == Shed {
			shed = 0.5
		}
		for _, tc := range []struct {
			p     Policy
			field string
		}{
			{Policy{RatePerSecond: 3}, "RatePerSecond 3 is only for mode throttle"},
			{Policy{Burst: 2}, "Burst 2 is only for mode throttle"},
			{Policy{MaxConcurrent: 4}, "MaxConcurrent 4 is only for mode throttle"},
			{Policy{Adaptive: true}, "Adaptive is only for mode throttle"},
		} {
			tc.p.Mode, tc.p.ShedFraction = mode, shed
			invalid = append(invalid, struct {
				p     Policy
				field string
			}{tc.p, tc.field})
		}
	}
	for _, tc := range invalid {
		err := tc.p.Validate()
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidPolicy mentioning %q", tc.p, err, tc.field)
		}
	}
}

func TestPolicyString(t *testing.T) {
	for p, want := range map[Policy]string{
		{Mode: Disable}: "disable",
		{Mode: Throttle, RatePerSecond: 50, Burst: 10, MaxConcurrent: 8}: "throttle 50/s burst 10, 8 concurrent",
		{Mode: Throttle, Adaptive: true}:                                 "throttle adaptive",
		{Mode: Shed, ShedFraction: 0.25}:                                 "shed 25%",
	} {
		if got := p.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", p, got, want)
		}
	}
}

// FuzzPolicy decodes a policy from JSON as a host's configuration would,
// and checks that a policy Validate accepts is enforced as written: Set
// takes it, and a rate limit with burst b admits at most b requests at one
// instant (an overflowing interval admitted every request).
func FuzzPolicy(f *testing.F) {
	f.Add([]byte(`{"mode":"throttle","ratePerSecond":1e-10}`))
	f.Add([]byte(`{"mode":"throttle","ratePerSecond":50,"burst":10}`))
	f.Add([]byte(`{"mode":"shed","shedFraction":0.5}`))
	f.Add([]byte(`{"mode":"throttle","adaptive":true,"maxConcurrent":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Policy
		if json.Unmarshal(data, &p) != nil {
			return
		}
		if err := p.Validate(); err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate error %v does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		clk := newFakeClock()
		ctl := MustNew(Options{Clock: clk.Now})
		if err := ctl.Set("f", p, "fuzz", clk.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Set(%+v) = %v after Validate accepted it", p, err)
		}
		if p.Mode != Throttle || p.RatePerSecond == 0 {
			return
		}
		admitted := 0
		for range max(p.Burst, 1) + 2 {
			if ctl.Allow("f") == nil {
				admitted++
			}
		}
		if admitted > max(p.Burst, 1) {
			t.Fatalf("%+v admitted %d requests at one instant, more than the burst", p, admitted)
		}
	})
}
