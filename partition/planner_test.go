package partition_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
)

const gib = 1 << 30

func mustNew(t testing.TB, opts partition.Options) *partition.Planner {
	t.Helper()
	p, err := partition.New(opts)
	require.NoError(t, err)
	return p
}

func allocation(t *testing.T, plan partition.Plan, fn string) hal.Allocation {
	t.Helper()
	a, ok := plan.Allocation(fn)
	require.Truef(t, ok, "function %q has no allocation in %+v", fn, plan.Allocations)
	return a
}

func approx(t *testing.T, want, got hal.Vector, msg string) {
	t.Helper()
	opt := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a)) })
	if d := cmp.Diff(want, got, opt); d != "" {
		t.Errorf("%s (-want +got):\n%s", msg, d)
	}
}

func TestCriticalGetsPeakPlusMarginAndBorrowsReserve(t *testing.T) {
	p := mustNew(t, partition.Options{})
	capacity := hal.Vector{hal.CPU: 10, hal.Memory: 10 * gib}
	plan, err := p.Plan(context.Background(), capacity, []partition.Demand{
		{Function: "router", Critical: true, Expected: hal.Vector{hal.CPU: 1}, Peak: hal.Vector{hal.CPU: 2, hal.Memory: 1 * gib}},
	})
	require.NoError(t, err)
	a := allocation(t, plan, "router")
	approx(t, hal.Vector{hal.CPU: 2.2, hal.Memory: 1.1 * gib}, a.Guarantee, "guarantee is peak + 10%")
	// Nothing else wants anything: the whole remainder is reserve, lent to router.
	approx(t, hal.Vector{hal.CPU: 7.8, hal.Memory: 8.9 * gib}, plan.Reserve, "reserve")
	approx(t, hal.Vector{hal.CPU: 10, hal.Memory: 10 * gib}, a.Limit, "limit = guarantee + reserve")
	assert.Contains(t, plan.Explain("router"), "critical")
	assert.Contains(t, plan.Explain("router"), "10% margin")
	assert.Empty(t, plan.DoesNotFit)
}

func TestExpectedAbovePeakIsGuaranteed(t *testing.T) {
	p := mustNew(t, partition.Options{Margin: partition.NoMargin})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 4}, []partition.Demand{
		{Function: "a", Critical: true, Expected: hal.Vector{hal.CPU: 3}, Peak: hal.Vector{hal.CPU: 1}},
	})
	require.NoError(t, err)
	approx(t, hal.Vector{hal.CPU: 3}, allocation(t, plan, "a").Guarantee, "guarantee is max(peak, expected)")
}

func TestShortfallNamesResourcesAndFunctions(t *testing.T) {
	p := mustNew(t, partition.Options{Margin: partition.NoMargin})
	capacity := hal.Vector{hal.CPU: 4, hal.Memory: 8 * gib, hal.IO: 100}
	_, err := p.Plan(context.Background(), capacity, []partition.Demand{
		{Function: "fw", Critical: true, Peak: hal.Vector{hal.CPU: 3, hal.Memory: 1 * gib}},
		{Function: "nat", Critical: true, Peak: hal.Vector{hal.CPU: 2, hal.Memory: 8 * gib}},
		{Function: "disk", Critical: true, Peak: hal.Vector{hal.IO: 50}},
		{Function: "batch", Peak: hal.Vector{hal.CPU: 100}},
	})
	var short *partition.ShortfallError
	require.ErrorAs(t, err, &short)
	approx(t, hal.Vector{hal.CPU: 1, hal.Memory: 1 * gib}, short.Shortfall, "shortfall")
	assert.Equal(t, []string{"fw", "nat"}, short.Functions, "disk needs no short resource; batch is not critical")
	msg := err.Error()
	for _, want := range []string{"partition:", "cpu by 1 cores", "memory by 1GiB", "fw, nat"} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "io by")
}

func TestMarginCanCauseShortfall(t *testing.T) {
	demands := []partition.Demand{{Function: "a", Critical: true, Peak: hal.Vector{hal.CPU: 4}}}
	_, err := mustNew(t, partition.Options{Margin: partition.NoMargin}).Plan(context.Background(), hal.Vector{hal.CPU: 4}, demands)
	require.NoError(t, err)
	_, err = mustNew(t, partition.Options{Margin: 0.25}).Plan(context.Background(), hal.Vector{hal.CPU: 4}, demands)
	var short *partition.ShortfallError
	require.ErrorAs(t, err, &short)
	approx(t, hal.Vector{hal.CPU: 1}, short.Shortfall, "4 cores * 1.25 - 4")
}

func TestCriticalMayEatIntoReserve(t *testing.T) {
	p := mustNew(t, partition.Options{Margin: partition.NoMargin, Reserve: 0.5})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 10}, []partition.Demand{
		{Function: "a", Critical: true, Peak: hal.Vector{hal.CPU: 8}},
		{Function: "b", Peak: hal.Vector{hal.CPU: 1}, Min: hal.Vector{}},
	})
	require.NoError(t, err)
	approx(t, hal.Vector{hal.CPU: 2}, plan.Reserve, "reserve shrinks to what critical functions leave")
	approx(t, hal.Vector{hal.CPU: 0}, allocation(t, plan, "b").Guarantee, "b's minimum is zero so it is admitted with nothing")
}

func TestFairFillByWeight(t *testing.T) {
	p := mustNew(t, partition.Options{Reserve: partition.NoReserve})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 6, hal.Memory: 100 * gib}, []partition.Demand{
		{Function: "heavy", Peak: hal.Vector{hal.CPU: 6, hal.Memory: 6 * gib}, Min: hal.Vector{}, Weight: 2},
		{Function: "light", Peak: hal.Vector{hal.CPU: 6, hal.Memory: 3 * gib}, Min: hal.Vector{}},
	})
	require.NoError(t, err)
	// Level L: heavy holds min(1, 2L) of its peak, light holds L; cpu 6*2L + 6*L = 6 -> L = 1/3.
	approx(t, hal.Vector{hal.CPU: 4, hal.Memory: 4 * gib}, allocation(t, plan, "heavy").Guarantee, "heavy: 2/3 of peak")
	approx(t, hal.Vector{hal.CPU: 2, hal.Memory: 1 * gib}, allocation(t, plan, "light").Guarantee, "light: 1/3 of peak")
	for _, fn := range []string{"heavy", "light"} {
		a := allocation(t, plan, fn)
		assert.Equal(t, a.Guarantee, a.Limit, "non-critical limit equals guarantee")
	}
	assert.Contains(t, plan.Explain("heavy"), "fair share 66.7%")
	assert.Contains(t, plan.Explain("light"), "fair share 33.3%")
	assert.Contains(t, plan.Explain("light"), "stopped at cpu")
}

func TestSaturatedFunctionsLeaveRoomToOthers(t *testing.T) {
	p := mustNew(t, partition.Options{Reserve: partition.NoReserve})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 16}, []partition.Demand{
		{Function: "small", Peak: hal.Vector{hal.CPU: 1}, Min: hal.Vector{}, Weight: 2},
		{Function: "big", Peak: hal.Vector{hal.CPU: 20}, Min: hal.Vector{}},
	})
	require.NoError(t, err)
	// small (weight 2) reaches its peak at L=0.5, when big holds 10 of its
	// 20; big then grows alone: 1 + 20L = 16, L = 0.75.
	approx(t, hal.Vector{hal.CPU: 1}, allocation(t, plan, "small").Guarantee, "small at its peak")
	assert.InDelta(t, 15, allocation(t, plan, "big").Guarantee[hal.CPU], 1e-9)
	assert.Contains(t, plan.Explain("small"), "full forecast peak")
	assert.Contains(t, plan.Explain("big"), "fair share 75%")
}

func TestMisfitsGetNoAllocationAndAreRanked(t *testing.T) {
	p := mustNew(t, partition.Options{Margin: partition.NoMargin, Reserve: partition.NoReserve})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 10}, []partition.Demand{
		{Function: "crit", Critical: true, Peak: hal.Vector{hal.CPU: 4}},
		{Function: "a", Expected: hal.Vector{hal.CPU: 2}, Peak: hal.Vector{hal.CPU: 4}},              // joins at L=0.5
		{Function: "b", Expected: hal.Vector{hal.CPU: 3}, Peak: hal.Vector{hal.CPU: 4}},              // joins at L=0.75
		{Function: "c", Expected: hal.Vector{hal.CPU: 4}, Peak: hal.Vector{hal.CPU: 4}},              // joins at L=1
		{Function: "d", Expected: hal.Vector{hal.CPU: 1}, Peak: hal.Vector{hal.CPU: 1}, Weight: 0.5}, // joins at L=2
	})
	require.NoError(t, err)
	// 6 cores left. At L=0.75: a holds 3, b would join with 3: 6 fits. At L=1: a 4 + b 4 = 8 > 6,
	// so the fill stops at L=0.75 (cpu ran out) with a=3, b=3; c and d do not fit.
	approx(t, hal.Vector{hal.CPU: 3}, allocation(t, plan, "a").Guarantee, "a")
	approx(t, hal.Vector{hal.CPU: 3}, allocation(t, plan, "b").Guarantee, "b")
	var got []string
	for _, m := range plan.DoesNotFit {
		got = append(got, m.Function)
		_, has := plan.Allocation(m.Function)
		assert.Falsef(t, has, "misfit %s must have no allocation", m.Function)
		assert.NotEmpty(t, m.Reason)
		assert.Contains(t, plan.Explain(m.Function), m.Reason)
	}
	assert.Equal(t, []string{"d", "c"}, got, "d would join last (L=2), so it is the first candidate")
	approx(t, hal.Vector{hal.CPU: 4}, plan.DoesNotFit[1].Need, "c needs its expected use")
	assert.Contains(t, plan.Explain("d"), "candidate 1 of 2")
	approx(t, hal.Vector{hal.CPU: 0}, plan.Reserve, "nothing left")
}

func TestBlockedMisfitStopsTheFill(t *testing.T) {
	p := mustNew(t, partition.Options{Reserve: partition.NoReserve})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 5}, []partition.Demand{
		{Function: "log", Expected: hal.Vector{hal.CPU: 1}, Peak: hal.Vector{hal.CPU: 3}},
		{Function: "dpi", Expected: hal.Vector{hal.CPU: 4}, Peak: hal.Vector{hal.CPU: 6}},
	})
	require.NoError(t, err)
	// dpi joins at L=2/3 with 4 cores while log holds 2: 6 > 5. The fill stops
	// there even though log alone could grow to 3: that is what keeps plans
	// monotonic in capacity (see the package documentation).
	approx(t, hal.Vector{hal.CPU: 2}, allocation(t, plan, "log").Guarantee, "log")
	require.Len(t, plan.DoesNotFit, 1)
	assert.Equal(t, "dpi", plan.DoesNotFit[0].Function)
	assert.Contains(t, plan.DoesNotFit[0].Reason, "not enough cpu")
	approx(t, hal.Vector{hal.CPU: 3}, plan.Reserve, "what the fill could not give joins the reserve")
}

func TestZeroOfAnAbsentResourceIsIgnored(t *testing.T) {
	p := mustNew(t, partition.Options{})
	plan, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 4}, []partition.Demand{
		{Function: "a", Expected: hal.Vector{hal.CPU: 1, hal.IO: 0}, Peak: hal.Vector{hal.CPU: 2, hal.IO: 0}},
	})
	require.NoError(t, err)
	assert.Equal(t, []hal.Resource{hal.CPU}, allocation(t, plan, "a").Guarantee.Resources())
}

func TestGranularity(t *testing.T) {
	p := mustNew(t, partition.Options{Reserve: partition.NoReserve, Granularity: hal.Vector{"nic.queue": 1}})
	plan, err := p.Plan(context.Background(), hal.Vector{"nic.queue": 16, hal.CPU: 4}, []partition.Demand{
		{Function: "fw", Critical: true, Peak: hal.Vector{"nic.queue": 3.2}},                              // 3.52 -> 4
		{Function: "a", Peak: hal.Vector{"nic.queue": 10, hal.CPU: 1}, Min: hal.Vector{"nic.queue": 1.5}}, // min 2
		{Function: "b", Peak: hal.Vector{"nic.queue": 10}, Min: hal.Vector{}},
	})
	require.NoError(t, err)
	approx(t, hal.Vector{"nic.queue": 4}, allocation(t, plan, "fw").Guarantee, "critical rounds up")
	for _, fn := range []string{"a", "b"} {
		q := allocation(t, plan, fn).Guarantee["nic.queue"]
		assert.Equalf(t, math.Trunc(q), q, "%s gets whole queues", fn)
		assert.GreaterOrEqualf(t, q, 2.0, "%s", fn)
	}
	assert.LessOrEqual(t, allocation(t, plan, "a").Guarantee[hal.CPU], 1.0)
}

func TestBadInput(t *testing.T) {
	capacity := hal.Vector{hal.CPU: 4, hal.Memory: gib}
	cases := []struct {
		name     string
		capacity hal.Vector
		demands  []partition.Demand
		want     []string
	}{
		{"empty name", capacity, []partition.Demand{{Peak: hal.Vector{hal.CPU: 1}}}, []string{"demand 0", "no function name"}},
		{"duplicate", capacity, []partition.Demand{{Function: "a"}, {Function: "b"}, {Function: "a"}}, []string{`"a"`, "twice"}},
		{"negative", capacity, []partition.Demand{{Function: "a", Peak: hal.Vector{hal.CPU: -1}}}, []string{`"a"`, "Peak", `"cpu"`, "-1"}},
		{"NaN", capacity, []partition.Demand{{Function: "a", Min: hal.Vector{hal.Memory: math.NaN()}}}, []string{`"a"`, "Min", `"memory"`, "NaN"}},
		{"infinite", capacity, []partition.Demand{{Function: "a", Expected: hal.Vector{hal.CPU: math.Inf(1)}}}, []string{`"a"`, "Expected", `"cpu"`}},
		{"unknown resource", capacity, []partition.Demand{{Function: "a", Peak: hal.Vector{"gpu": 1}}}, []string{`"a"`, `"gpu"`, "not in the capacity", "cpu, memory"}},
		{"NaN of an unknown resource", capacity, []partition.Demand{{Function: "a", Expected: hal.Vector{"gpu": math.NaN()}}}, []string{`"a"`, "Expected", `"gpu"`}},
		{"bad weight", capacity, []partition.Demand{{Function: "a", Weight: -2}}, []string{`"a"`, "weight", "-2"}},
		{"NaN weight", capacity, []partition.Demand{{Function: "a", Weight: math.NaN()}}, []string{`"a"`, "weight"}},
		{"bad capacity", hal.Vector{hal.CPU: -4}, nil, []string{"capacity", `"cpu"`, "negative"}},
	}
	p := mustNew(t, partition.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Plan(context.Background(), c.capacity, c.demands)
			require.ErrorIs(t, err, partition.ErrInvalidInput)
			assert.True(t, strings.HasPrefix(err.Error(), "partition: "), err.Error())
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	cases := []struct {
		name string
		opts partition.Options
		want string
	}{
		{"NaN margin", partition.Options{Margin: math.NaN()}, "Options.Margin"},
		{"reserve of everything", partition.Options{Reserve: 1}, "Options.Reserve"},
		{"infinite reserve", partition.Options{Reserve: math.Inf(1)}, "Options.Reserve"},
		{"zero granularity", partition.Options{Granularity: hal.Vector{"nic.queue": 0}}, `Options.Granularity resource "nic.queue"`},
		{"negative granularity", partition.Options{Granularity: hal.Vector{"nic.queue": -1}}, `"nic.queue"`},
		{"negative workers", partition.Options{Workers: -1}, "Options.Workers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := partition.New(c.opts)
			require.ErrorIs(t, err, partition.ErrInvalidInput)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	p := mustNew(t, partition.Options{})
	assert.Equal(t, partition.DefaultMargin, p.Margin())
	assert.Equal(t, partition.DefaultReserve, p.Reserve())
	p = mustNew(t, partition.Options{Margin: partition.NoMargin, Reserve: partition.NoReserve})
	assert.Zero(t, p.Margin())
	assert.Zero(t, p.Reserve())
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mustNew(t, partition.Options{}).Plan(ctx, hal.Vector{hal.CPU: 1}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestEmptyInput(t *testing.T) {
	plan, err := mustNew(t, partition.Options{}).Plan(context.Background(), hal.Vector{hal.CPU: 2}, nil)
	require.NoError(t, err)
	assert.Empty(t, plan.Allocations)
	assert.Empty(t, plan.DoesNotFit)
	approx(t, hal.Vector{hal.CPU: 2}, plan.Reserve, "everything is reserve")
}

func TestPartitionerFunc(t *testing.T) {
	boom := errors.New("boom")
	var pt partition.Partitioner = partition.PartitionerFunc(func(context.Context, hal.Vector, []partition.Demand) (partition.Plan, error) {
		return partition.Plan{}, boom
	})
	_, err := pt.Plan(context.Background(), nil, nil)
	assert.ErrorIs(t, err, boom)
}

func TestLogsThroughTheCallersLogger(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := mustNew(t, partition.Options{Logger: logger})
	_, err := p.Plan(context.Background(), hal.Vector{hal.CPU: 2}, []partition.Demand{
		{Function: "a", Peak: hal.Vector{hal.CPU: 1}},
		{Function: "b", Peak: hal.Vector{hal.CPU: 9}, Min: hal.Vector{hal.CPU: 9}},
	})
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "partition: planned")
	assert.Contains(t, buf.String(), "functions=2 allocations=1 does_not_fit=1")
}

// TestSmallFunctionIsNotPushedOutByALargerOne is the case of issue 20: a
// function that fits in what is left gets its share whatever its name,
// and a large function that does not fit does not take it out with it.
func TestSmallFunctionIsNotPushedOutByALargerOne(t *testing.T) {
	p := mustNew(t, partition.Options{}) // 10% margin, 10% reserve
	capacity := hal.Vector{hal.CPU: 4}
	for _, name := range []string{"stats", "astats", "zstats"} {
		t.Run(name, func(t *testing.T) {
			plan, err := p.Plan(context.Background(), capacity, []partition.Demand{
				{Function: "forward", Critical: true, Expected: hal.Vector{hal.CPU: 1}, Peak: hal.Vector{hal.CPU: 1}},
				{Function: name, Expected: hal.Vector{hal.CPU: 0.5}, Peak: hal.Vector{hal.CPU: 0.5}},
				{Function: "reports", Expected: hal.Vector{hal.CPU: 10}, Peak: hal.Vector{hal.CPU: 10}},
			})
			require.NoError(t, err)
			// 4 cores less the 0.4 reserve less forward's 1.1 leave 2.5:
			// the 0.5 fits, the 10 does not.
			approx(t, hal.Vector{hal.CPU: 0.5}, allocation(t, plan, name).Guarantee, name)
			require.Len(t, plan.DoesNotFit, 1)
			assert.Equal(t, "reports", plan.DoesNotFit[0].Function)
			approx(t, hal.Vector{hal.CPU: 4 - 1.1 - 0.5}, plan.Reserve, "what nobody was guaranteed")
		})
	}
}

// TestSecondPassFitsWhatTheFillLeft: the fill stops when one function's
// minimum does not fit; a function that would join later but fits in
// what is left still gets its minimum, on resources the stop did not use
// up.
func TestSecondPassFitsWhatTheFillLeft(t *testing.T) {
	p := mustNew(t, partition.Options{Reserve: partition.NoReserve})
	plan, err := p.Plan(context.Background(), hal.Vector{"fpga.qslot": 8, "fpga.flow": 4096}, []partition.Demand{
		// big joins at level 1 and needs 20 slots: the fill stops there.
		{Function: "big", Expected: hal.Vector{"fpga.qslot": 20, "fpga.flow": 100}, Peak: hal.Vector{"fpga.qslot": 20, "fpga.flow": 100}},
		// small would join at level 2 (weight 0.5), after the stop.
		{Function: "small", Expected: hal.Vector{"fpga.qslot": 1, "fpga.flow": 100}, Peak: hal.Vector{"fpga.qslot": 1, "fpga.flow": 100}, Weight: 0.5},
	})
	require.NoError(t, err)
	approx(t, hal.Vector{"fpga.qslot": 1, "fpga.flow": 100}, allocation(t, plan, "small").Guarantee, "small")
	assert.Contains(t, plan.Explain("small"), "given its minimum")
	require.Len(t, plan.DoesNotFit, 1)
	assert.Equal(t, "big", plan.DoesNotFit[0].Function)
	assert.Contains(t, plan.DoesNotFit[0].Reason, "not enough fpga.qslot")
}

// TestUnits is the whole-unit card of issue 20: a forecast of 2.2008
// queue slots is planned in whole slots, flow entries in blocks of 64 of
// at least 128, never below the demand of a critical function.
func TestUnits(t *testing.T) {
	p := mustNew(t, partition.Options{Units: map[hal.Resource]partition.Unit{
		"fpga.qslot": {Step: 1},
		"fpga.flow":  {Step: 64, Min: 100}, // Min rounds up to 128
	}})
	capacity := hal.Vector{"fpga.qslot": 8, "fpga.flow": 4096}
	plan, err := p.Plan(context.Background(), capacity, []partition.Demand{
		{Function: "forward", Critical: true, Peak: hal.Vector{"fpga.qslot": 2.2008, "fpga.flow": 10}},
		{Function: "stats", Expected: hal.Vector{"fpga.qslot": 1, "fpga.flow": 100}, Peak: hal.Vector{"fpga.qslot": 1.5, "fpga.flow": 700}},
		{Function: "reports", Expected: hal.Vector{"fpga.qslot": 1, "fpga.flow": 0}, Peak: hal.Vector{"fpga.qslot": 4, "fpga.flow": 0}},
	})
	require.NoError(t, err)
	approx(t, hal.Vector{"fpga.qslot": 3, "fpga.flow": 128}, allocation(t, plan, "forward").Guarantee, "critical: 2.42 slots and 11 entries round up, the entries to the minimum")
	for _, a := range plan.Allocations {
		for r, q := range a.Guarantee {
			step := map[hal.Resource]float64{"fpga.qslot": 1, "fpga.flow": 64}[r]
			assert.InDeltaf(t, 0, math.Remainder(q, step), 1e-9, "%s %s=%v is not a whole number of steps", a.Function, r, q)
			if r == "fpga.flow" && q != 0 {
				assert.GreaterOrEqualf(t, q, 128.0, "%s gets fewer flow entries than the card hands out", a.Function)
			}
		}
	}
	stats := allocation(t, plan, "stats").Guarantee
	assert.GreaterOrEqual(t, stats["fpga.flow"], 128.0, "stats's minimum of 100 entries becomes 128")
	assert.GreaterOrEqual(t, stats["fpga.qslot"], 1.0)

	// A critical demand that fits only unrounded is refused, and the
	// error says why.
	_, err = p.Plan(context.Background(), hal.Vector{"fpga.qslot": 2.5, "fpga.flow": 4096}, []partition.Demand{
		{Function: "forward", Critical: true, Peak: hal.Vector{"fpga.qslot": 2.2}},
	})
	var short *partition.ShortfallError
	require.ErrorAs(t, err, &short)
	assert.Contains(t, err.Error(), "fpga.qslot is handed out in whole steps of 1")
}

func TestUnitsValidated(t *testing.T) {
	for name, opts := range map[string]partition.Options{
		"negative step": {Units: map[hal.Resource]partition.Unit{"fpga.qslot": {Step: -1}}},
		"NaN min":       {Units: map[hal.Resource]partition.Unit{"fpga.qslot": {Min: math.NaN()}}},
		"two steps":     {Units: map[hal.Resource]partition.Unit{"fpga.qslot": {Step: 2}}, Granularity: hal.Vector{"fpga.qslot": 1}},
	} {
		_, err := partition.New(opts)
		require.ErrorIsf(t, err, partition.ErrInvalidInput, "%s", name)
		assert.Containsf(t, err.Error(), `"fpga.qslot"`, "%s: the error names the resource", name)
	}
}
