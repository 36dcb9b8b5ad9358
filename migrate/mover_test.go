package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
)

func noop(context.Context, []byte) ([]byte, error) { return nil, nil }

func TestNewValidates(t *testing.T) {
	lt := migrate.NewLocalTarget("a", migrate.LocalOptions{})
	keyless := newTarget(t, "keyless", "http://127.0.0.2:1/", migrate.CloudEventsOptions{})
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, tc := range []struct {
		name    string
		targets []migrate.Target
		opts    migrate.Options
		want    string
	}{
		{"no targets", nil, migrate.Options{}, "no targets"},
		{"nil target", []migrate.Target{lt, nil}, migrate.Options{}, "targets[1] is nil"},
		{"duplicate", []migrate.Target{lt, migrate.NewLocalTarget("a", migrate.LocalOptions{})}, migrate.Options{}, `"a" used twice`},
		{"no name", []migrate.Target{migrate.NewLocalTarget("", migrate.LocalOptions{})}, migrate.Options{}, "has no name"},
		{"no key", []migrate.Target{keyless}, migrate.Options{}, `"keyless" has no HMAC key`},
		{"unwritable buffer dir", []migrate.Target{lt}, migrate.Options{BufferDir: file}, "is not writable"},
		{"short key", []migrate.Target{lt}, migrate.Options{Key: []byte("secret")}, "Options.Key: migrate: HMAC key is 6 bytes; use at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.New(tc.targets, tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMigrateValidatesSpecs(t *testing.T) {
	m := newMover(t, []migrate.Target{migrate.NewLocalTarget("a", migrate.LocalOptions{})}, migrate.Options{})
	for _, tc := range []struct {
		specs []migrate.Spec
		want  string
	}{
		{nil, "no specs"},
		{[]migrate.Spec{{Local: noop}}, "no function name"},
		{[]migrate.Spec{{Function: "f"}}, `"f": spec has no Local`},
		{[]migrate.Spec{{Function: "f", Local: noop}, {Function: "f", Local: noop}}, `specs[1]: function "f" listed twice`},
		{[]migrate.Spec{{Function: "f", Local: noop, Regions: []string{""}}}, "Regions[0] is empty"},
		{[]migrate.Spec{{Function: "two words", Local: noop}}, `"two words": byte 3 (0x20) is not printable ASCII`},
		{[]migrate.Spec{{Function: "f", Local: noop, Demand: hal.Vector{hal.CPU: -1}}}, `"f" demand`},
	} {
		_, err := m.Migrate(ctxT(t), "", tc.specs)
		require.ErrorContains(t, err, tc.want)
	}
}

// fakeTarget is an in-memory Target with a fixed description and latency.
type fakeTarget struct {
	info    migrate.TargetInfo
	latency time.Duration
	down    bool
}

func (f *fakeTarget) Info() migrate.TargetInfo { return f.info }
func (f *fakeTarget) Probe(context.Context) (time.Duration, error) {
	if f.down {
		return 0, errors.New("probe refused")
	}
	return f.latency, nil
}
func (f *fakeTarget) Call(_ context.Context, req migrate.Request) ([]byte, error) {
	if req.Kind == migrate.KindInvoke {
		return req.Local(context.Background(), req.Payload)
	}
	return nil, nil
}

func fake(name, region, provider string, cost float64, latency time.Duration) *fakeTarget {
	return &fakeTarget{info: migrate.TargetInfo{Name: name, Region: region, Provider: provider, CostPerMillion: cost}, latency: latency}
}

func placements(t *testing.T, m *migrate.Mover, specs ...migrate.Spec) []migrate.Placement {
	t.Helper()
	lease, err := m.Migrate(ctxT(t), "", specs)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, lease.Return(context.Background())) })
	return lease.Placements()
}

func TestPolicies(t *testing.T) {
	targets := []migrate.Target{
		fake("cheap-slow", "eu", "aws", 1, 30*time.Millisecond),
		fake("dear-fast", "eu", "gcp", 5, time.Millisecond),
		fake("mid", "us", "azure", 2, 10*time.Millisecond),
	}
	spec := func(fn string, regions ...string) migrate.Spec {
		return migrate.Spec{Function: fn, Local: noop, Regions: regions}
	}
	t.Run("cheapest", func(t *testing.T) {
		p := placements(t, newMover(t, targets, migrate.Options{}), spec("f"))
		require.Equal(t, "cheap-slow", p[0].Target)
		require.Contains(t, p[0].Reason, "cheapest fitting target")
	})
	t.Run("lowest latency", func(t *testing.T) {
		p := placements(t, newMover(t, targets, migrate.Options{Policy: migrate.LowestLatency{}}), spec("f"))
		require.Equal(t, "dear-fast", p[0].Target)
		require.Contains(t, p[0].Reason, "lowest measured latency (1ms)")
	})
	t.Run("spread across providers", func(t *testing.T) {
		p := placements(t, newMover(t, targets, migrate.Options{Policy: migrate.SpreadProviders{}}), spec("f"), spec("g"), spec("h"))
		got := map[string]bool{}
		for _, pl := range p {
			got[pl.Provider] = true
		}
		require.Len(t, got, 3, "three functions on three providers: %v", p)
	})
	t.Run("data residency allow-list", func(t *testing.T) {
		p := placements(t, newMover(t, targets, migrate.Options{}), spec("f", "us"))
		require.Equal(t, "mid", p[0].Target)
		require.Contains(t, p[0].Reason, `cheap-slow is in region "eu", not in the allow-list [us]`)
	})
	t.Run("unhealthy skipped", func(t *testing.T) {
		down := fake("down", "eu", "aws", 0, 0)
		down.down = true
		p := placements(t, newMover(t, append([]migrate.Target{down}, targets...), migrate.Options{}), spec("f"))
		require.Equal(t, "cheap-slow", p[0].Target)
		require.Contains(t, p[0].Reason, "down failed its probe: probe refused")
	})
	t.Run("capacity", func(t *testing.T) {
		small := migrate.NewLocalTarget("small", migrate.LocalOptions{Capacity: hal.Vector{hal.CPU: 1}})
		big := migrate.NewLocalTarget("big", migrate.LocalOptions{Capacity: hal.Vector{hal.CPU: 4}, CostPerMillion: 1})
		m := newMover(t, []migrate.Target{small, big}, migrate.Options{})
		d := hal.Vector{hal.CPU: 0.75}
		p := placements(t, m, migrate.Spec{Function: "f", Local: noop, Demand: d}, migrate.Spec{Function: "g", Local: noop, Demand: d})
		require.Equal(t, "small", p[0].Target)
		require.Equal(t, "big", p[1].Target)
		require.Contains(t, p[1].Reason, "small lacks room (short by cpu=0.5 cores)")
	})
}

// countingState counts Imports, to see state come home.
type countingState struct {
	migrate.MapState
	imports atomic.Int32
}

func (c *countingState) Import(ctx context.Context, r io.Reader) error {
	c.imports.Add(1)
	return c.MapState.Import(ctx, r)
}

// A Migrate that fails midway has already returned what it moved.
func TestMigrateFailsMidwayReturnsWhatMoved(t *testing.T) {
	reg, remote := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{Region: "eu"})}, migrate.Options{})
	home := &countingState{}
	home.Add("seed", 3)
	_, err := m.Migrate(ctxT(t), "", []migrate.Spec{
		{Function: "count", Local: count(&home.MapState), State: home},
		{Function: "other", Local: noop, Regions: []string{"mars"}},
	})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, `function "other"`)
	require.ErrorContains(t, err, `not in the allow-list [mars]`)
	require.Equal(t, map[string]int64{"seed": 3}, remote.Snapshot(), "the state had been moved")
	require.Equal(t, int32(1), home.imports.Load(), "and came back home")
	require.Equal(t, map[string]int64{"seed": 3}, home.Snapshot())
}

// No healthy target: the function keeps its work at home, and the error
// says why (here: the clocks differ by more than the window).
func TestMigrateClockSkewKeepsWorkLocal(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{Window: time.Minute})
	skewed := func() time.Time { return time.Now().Add(-time.Hour) }
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{Clock: skewed})}, migrate.Options{})
	_, err := m.Migrate(ctxT(t), "", []migrate.Spec{{Function: "count", Local: noop}})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, "clocks skewed")
}

func TestPlacementString(t *testing.T) {
	p := migrate.Placement{Function: "f", Target: "t", Region: "r", Provider: "p", Reason: "why"}
	require.Equal(t, "f -> t (region r, provider p): why", p.String())
	require.Equal(t, "put-state", migrate.KindPutState.String())
	require.Equal(t, migrate.EventGetState, migrate.EventType(migrate.KindGetState))
	var buf bytes.Buffer
	require.NoError(t, (&migrate.MapState{}).Export(context.Background(), &buf))
	require.Equal(t, "{}\n", buf.String())
}

// A failover places the function where the lease's other functions leave
// room for it.
func TestFailoverRespectsCapacity(t *testing.T) {
	a := migrate.NewLocalTarget("a", migrate.LocalOptions{Capacity: hal.Vector{hal.CPU: 1}})
	b := migrate.NewLocalTarget("b", migrate.LocalOptions{Capacity: hal.Vector{hal.CPU: 1}, CostPerMillion: 1})
	c := migrate.NewLocalTarget("c", migrate.LocalOptions{Capacity: hal.Vector{hal.CPU: 4}, CostPerMillion: 2})
	m := newMover(t, []migrate.Target{a, b, c}, migrate.Options{FailoverAfter: 20 * time.Millisecond})
	d := hal.Vector{hal.CPU: 0.75}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "f", Local: noop, Demand: d}, {Function: "g", Local: noop, Demand: d}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, []string{lease.Placements()[0].Target, lease.Placements()[1].Target})
	a.SetDown(true)
	_, err = lease.Invoke(ctx, "f", nil)
	require.NoError(t, err)
	p := lease.Placements()[0]
	require.Equal(t, "c", p.Target)
	require.Contains(t, p.Reason, "b lacks room")
	require.NoError(t, lease.Return(ctx))
}
