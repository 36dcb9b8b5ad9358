package card_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/examples/offloadcard/card"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/partition"
)

var ctx = context.Background()

func open(t *testing.T, config string) *card.Card {
	t.Helper()
	dev, err := hal.Open("offloadcard", config)
	require.NoError(t, err)
	k, ok := dev.(*card.Card)
	require.Truef(t, ok, "hal.Open returned %T", dev)
	return k
}

// snapshot is everything Apply may change.
type snapshot struct {
	Owners []string
	Quotas map[string]card.FlowQuota
}

func snap(k *card.Card) snapshot { return snapshot{k.QueueOwners(), k.FlowQuotas()} }

func TestOpenThroughRegistry(t *testing.T) {
	assert.Contains(t, hal.Drivers(), "offloadcard")
	k := open(t, `{"queues": 8, "flows": 1000}`)
	capacity, err := k.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, hal.Vector{card.Queue: 8, card.Flow: 1000}, capacity)
	assert.Equal(t, make([]string, 8), k.QueueOwners(), "all queues start free")
}

func TestOpenBadConfig(t *testing.T) {
	cases := []struct{ config, want string }{
		{`not json`, "card: config"},
		{`{"queues": 8, "flows": 10, "queus": 1}`, `"queus"`},
		{`{"queues": 0, "flows": 10}`, `"queues"`},
		{`{"queues": 5000, "flows": 10}`, `"queues": 5000`},
		{`{"queues": 4, "flows": -1}`, `"flows"`},
		{`{"queues": 4, "flows": 10, "functions": ["a", ""]}`, `"functions"[1] is empty`},
		{`{"queues": 4, "flows": 10, "functions": ["a", "a"]}`, `"a" is listed twice`},
		{`{"queues": 4, "flows": 10} {}`, "after the JSON object"},
		{`{"queues": "four", "flows": 10}`, "queues"},
	}
	for _, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			_, err := hal.Open("offloadcard", c.config)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestApplyAndUndoRestoreExactly(t *testing.T) {
	k := open(t, `{"queues": 6, "flows": 100}`)
	initial := snap(k)
	undo1, err := k.Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{card.Queue: 2, card.Flow: 20}, Limit: hal.Vector{card.Queue: 2, card.Flow: 60}},
		{Function: "log", Guarantee: hal.Vector{card.Queue: 1, card.Flow: 10}, Limit: hal.Vector{card.Queue: 1, card.Flow: 10}},
	})
	require.NoError(t, err)
	afterFirst := snap(k)
	assert.Equal(t, []string{"fw", "fw", "log", "", "", ""}, afterFirst.Owners)
	assert.Equal(t, map[string]card.FlowQuota{"fw": {Reserved: 20, Limit: 60}, "log": {Reserved: 10, Limit: 10}}, afterFirst.Quotas)

	// A second apply replaces fw's allocation and adds nat; log keeps its own.
	undo2, err := k.Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{card.Queue: 3, card.Flow: 30}},
		{Function: "nat", Guarantee: hal.Vector{card.Queue: 1}},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"fw", "fw", "log", "fw", "nat", ""}, k.QueueOwners())
	assert.Equal(t, card.FlowQuota{Reserved: 30, Limit: 100}, k.FlowQuotas()["fw"], "no flow limit: the whole table")

	require.NoError(t, undo2(ctx))
	if d := cmp.Diff(afterFirst, snap(k)); d != "" {
		t.Errorf("undo of the second apply (-want +got):\n%s", d)
	}
	require.NoError(t, undo1(ctx))
	if d := cmp.Diff(initial, snap(k)); d != "" {
		t.Errorf("undo of the first apply (-want +got):\n%s", d)
	}
	require.NoError(t, undo1(ctx), "undo is idempotent")
	if d := cmp.Diff(initial, snap(k)); d != "" {
		t.Errorf("second undo changed state (-want +got):\n%s", d)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	k := open(t, `{"queues": 4, "flows": 100, "functions": ["fw", "log"]}`)
	_, err := k.Apply(ctx, []hal.Allocation{{Function: "fw", Guarantee: hal.Vector{card.Queue: 1, card.Flow: 10}}})
	require.NoError(t, err)
	before := snap(k)
	cases := []struct {
		name   string
		allocs []hal.Allocation
		want   string
		is     error
	}{
		{"too many queues", []hal.Allocation{
			{Function: "log", Guarantee: hal.Vector{card.Queue: 2}},
			{Function: "fw", Guarantee: hal.Vector{card.Queue: 3}},
		}, `function "log" guarantee "nic.queue": 1 more queues`, nil},
		{"flow reservations", []hal.Allocation{{Function: "log", Guarantee: hal.Vector{card.Flow: 95}}}, "total 105 entries", nil},
		{"fractional queue", []hal.Allocation{{Function: "log", Guarantee: hal.Vector{card.Queue: 1.5}}}, `function "log" guarantee "nic.queue": 1.5 is not a whole multiple of 1`, hal.ErrNotInUnits},
		{"fractional limit", []hal.Allocation{{Function: "log", Limit: hal.Vector{card.Flow: 2.5}}}, `limit "nic.flow"`, hal.ErrNotInUnits},
		{"foreign resource", []hal.Allocation{{Function: "log", Guarantee: hal.Vector{hal.CPU: 1}}}, `resource "cpu" is not on this card`, nil},
		{"unknown function", []hal.Allocation{{Function: "dpi", Guarantee: hal.Vector{card.Queue: 1}}}, `"dpi" is not served`, hal.ErrUnknownFunction},
		{"negative", []hal.Allocation{{Function: "log", Guarantee: hal.Vector{card.Queue: -1}}}, "negative", nil},
		{"limit below guarantee", []hal.Allocation{{Function: "log", Guarantee: hal.Vector{card.Flow: 5}, Limit: hal.Vector{card.Flow: 2}}}, "below guarantee", nil},
		{"twice", []hal.Allocation{{Function: "log"}, {Function: "log"}}, "two allocations", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := k.Apply(ctx, c.allocs)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			if c.is != nil {
				assert.ErrorIs(t, err, c.is)
			}
			if d := cmp.Diff(before, snap(k)); d != "" {
				t.Errorf("a refused apply changed the card (-before +after):\n%s", d)
			}
		})
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = k.Apply(canceled, nil)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestFlowLimitsAndSharedPool(t *testing.T) {
	k := open(t, `{"queues": 4, "flows": 100}`)
	_, err := k.Apply(ctx, []hal.Allocation{
		{Function: "fw", Guarantee: hal.Vector{card.Flow: 30}, Limit: hal.Vector{card.Flow: 80}},
		{Function: "log", Guarantee: hal.Vector{card.Flow: 20}, Limit: hal.Vector{card.Flow: 20}},
	})
	require.NoError(t, err)

	require.NoError(t, k.InstallFlows("log", 20))
	assert.ErrorIs(t, k.InstallFlows("log", 1), card.ErrOverLimit, "non-critical held at its limit")

	// fw bursts past its 30 reserved entries into the 50 shared ones.
	require.NoError(t, k.InstallFlows("fw", 75))
	assert.ErrorIs(t, k.InstallFlows("fw", 10), card.ErrOverLimit)
	// A function with no allocation only has the shared pool: 5 left.
	assert.ErrorIs(t, k.InstallFlows("dns", 6), card.ErrTableFull)
	require.NoError(t, k.InstallFlows("dns", 5))
	assert.ErrorIs(t, k.InstallFlows("fw", 1), card.ErrTableFull, "shared pool exhausted")

	usage, err := k.Usage(ctx, "fw")
	require.NoError(t, err)
	assert.Equal(t, hal.Vector{card.Queue: 0, card.Flow: 75}, usage)
	k.RemoveFlows("fw", 75)
	usage, err = k.Usage(ctx, "fw")
	require.NoError(t, err)
	assert.Zero(t, usage[card.Flow])
	assert.Error(t, k.InstallFlows("fw", -1))
}

func TestReservationSurvivesABurst(t *testing.T) {
	k := open(t, `{"queues": 2, "flows": 50}`)
	_, err := k.Apply(ctx, []hal.Allocation{{Function: "log", Guarantee: hal.Vector{card.Flow: 10}, Limit: hal.Vector{card.Flow: 10}}})
	require.NoError(t, err)
	require.NoError(t, k.InstallFlows("fw", 40), "fw takes the whole shared part")
	assert.ErrorIs(t, k.InstallFlows("fw", 1), card.ErrTableFull)
	assert.NoError(t, k.InstallFlows("log", 10), "log's reserved entries are still there")
}

func TestPlannedByPartition(t *testing.T) {
	cpus := sim.New(hal.Vector{hal.CPU: 8})
	nic := open(t, `{"queues": 16, "flows": 4096}`)
	dev := hal.Combine(cpus, nic)
	capacity, err := dev.Capacity(ctx)
	require.NoError(t, err)

	planner, err := partition.New(partition.Options{Granularity: card.Granularity()})
	require.NoError(t, err)
	plan, err := planner.Plan(ctx, capacity, []partition.Demand{
		{Function: "firewall", Critical: true, Peak: hal.Vector{hal.CPU: 2, card.Queue: 4, card.Flow: 1000}},
		{Function: "nat", Critical: true, Peak: hal.Vector{hal.CPU: 1, card.Queue: 2, card.Flow: 700}},
		{Function: "telemetry", Expected: hal.Vector{card.Queue: 1, card.Flow: 200}, Peak: hal.Vector{hal.CPU: 1, card.Queue: 4, card.Flow: 1500}},
		{Function: "dpi", Expected: hal.Vector{hal.CPU: 3, card.Queue: 6, card.Flow: 2000}, Peak: hal.Vector{hal.CPU: 4, card.Queue: 8, card.Flow: 3000}},
	})
	require.NoError(t, err)
	require.Len(t, plan.DoesNotFit, 1, "%+v", plan)
	assert.Equal(t, "dpi", plan.DoesNotFit[0].Function)

	before := snap(nic)
	undo, err := dev.Apply(ctx, plan.Allocations)
	require.NoError(t, err)
	for _, a := range plan.Allocations {
		usage, err := nic.Usage(ctx, a.Function)
		require.NoError(t, err)
		assert.Equalf(t, a.Guarantee[card.Queue], usage[card.Queue], "%s owns its guaranteed queues", a.Function)
		assert.Equalf(t, int(a.Guarantee[card.Flow]), nic.FlowQuotas()[a.Function].Reserved, "%s flow reservation", a.Function)
		if _, ok := a.Guarantee[hal.CPU]; ok {
			got, ok := cpus.Allocations()[a.Function]
			assert.Truef(t, ok, "%s reached the cpu device", a.Function)
			assert.Equal(t, a.Guarantee[hal.CPU], got.Guarantee[hal.CPU])
		}
	}
	// firewall is critical: it may burst past its reservation into the reserve.
	fw, _ := plan.Allocation("firewall")
	assert.Greater(t, fw.Limit[card.Flow], fw.Guarantee[card.Flow])
	require.NoError(t, nic.InstallFlows("firewall", int(fw.Guarantee[card.Flow])+1))
	// telemetry is not: its limit is its reservation.
	tel, _ := plan.Allocation("telemetry")
	assert.ErrorIs(t, nic.InstallFlows("telemetry", int(tel.Limit[card.Flow])+1), card.ErrOverLimit)

	require.NoError(t, undo(ctx))
	if d := cmp.Diff(before, snap(nic)); d != "" {
		t.Errorf("undo (-before +after):\n%s", d)
	}
	assert.Empty(t, cpus.Allocations())
}

func TestConcurrentUse(t *testing.T) {
	k := open(t, `{"queues": 8, "flows": 1000}`)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		fn := fmt.Sprintf("f%d", g)
		wg.Go(func() {
			for range 200 {
				if err := k.InstallFlows(fn, 3); err != nil && !errors.Is(err, card.ErrOverLimit) && !errors.Is(err, card.ErrTableFull) {
					errs <- err
					return
				}
				k.RemoveFlows(fn, 2)
				if _, err := k.Usage(ctx, fn); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			undo, err := k.Apply(ctx, []hal.Allocation{{Function: "f0", Guarantee: hal.Vector{card.Queue: float64(i % 8), card.Flow: 100}, Limit: hal.Vector{card.Flow: 300}}})
			if err != nil {
				errs <- err
				return
			}
			if err := undo(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, make([]string, 8), k.QueueOwners(), "every apply was undone")
	assert.Empty(t, k.FlowQuotas())
}

// FuzzOpen feeds the config decoder arbitrary text: it must return a card
// whose capacity is the configured one, or an error; never panic.
func FuzzOpen(f *testing.F) {
	for _, seed := range []string{
		`{"queues": 16, "flows": 4096}`,
		`{"queues": 1, "flows": 1, "functions": ["a"]}`,
		`{"queues": 0}`, `{}`, `[]`, `null`, ``, `{"queues": 1e3, "flows": 2}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, config string) {
		dev, err := card.Open(config)
		if err != nil {
			if dev != nil {
				t.Fatalf("error %v with a device", err)
			}
			return
		}
		capacity, err := dev.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q, fl := capacity[card.Queue], capacity[card.Flow]
		if q < 1 || q > card.MaxQueues || fl < 1 || fl > card.MaxFlows {
			t.Fatalf("config %q accepted with capacity %v", config, capacity)
		}
		if got := dev.(*card.Card).QueueOwners(); len(got) != int(q) || slices.ContainsFunc(got, func(s string) bool { return s != "" }) {
			t.Fatalf("fresh card has queue table %v", got)
		}
	})
}
