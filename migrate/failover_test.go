package migrate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// Three regions as separate processes on 127.0.0.2-4; two stateful
// functions move to the cheapest; 10 000 invocations stream through the
// lease and the chosen region is killed half-way. After Return, the state
// at home holds the effect of every invocation exactly once.
func TestKillRegionMidStreamExactlyOnce(t *testing.T) {
	funcs := []string{"count-a", "count-b"}
	r1 := startChildRegion(t, "127.0.0.2", funcs...)
	r2 := startChildRegion(t, "127.0.0.3", funcs...)
	r3 := startChildRegion(t, "127.0.0.4", funcs...)
	targets := []migrate.Target{
		newTarget(t, "r1", r1.url, migrate.CloudEventsOptions{Region: "eu-west", Provider: "p1", CostPerMillion: 1}),
		newTarget(t, "r2", r2.url, migrate.CloudEventsOptions{Region: "eu-west", Provider: "p2", CostPerMillion: 2}),
		newTarget(t, "r3", r3.url, migrate.CloudEventsOptions{Region: "us-east", Provider: "p3", CostPerMillion: 0.5}),
	}
	m := newMover(t, targets, migrate.Options{CheckpointEvery: 100, FailoverAfter: 300 * time.Millisecond})

	home := map[string]*migrate.MapState{}
	var specs []migrate.Spec
	for _, fn := range funcs {
		st := &migrate.MapState{}
		st.Add("seed", 7)
		home[fn] = st
		specs = append(specs, migrate.Spec{Function: fn, Local: count(st), State: st, Regions: []string{"eu-west"}})
	}
	// A generous bound: on a loaded CI machine under -race, 10 000
	// invocations may take far longer than on a quiet one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lease, err := m.Migrate(ctx, "", specs)
	require.NoError(t, err)
	for _, p := range lease.Placements() {
		require.Equal(t, "r1", p.Target, "cheapest eu-west target: %s", p)
		require.Contains(t, p.Reason, "cheapest")
		require.Contains(t, p.Reason, "r3 is in region \"us-east\"")
	}

	const total = 10_000
	var next, done atomic.Int64
	half := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				fn := funcs[i%2]
				out, err := lease.Invoke(ctx, fn, fmt.Appendf(nil, "inv-%d", i))
				if err != nil {
					errs <- fmt.Errorf("invocation %d of %s: %w", i, fn, err)
				} else if string(out) != "1" {
					errs <- fmt.Errorf("invocation %d of %s answered %q, want 1", i, fn, out)
				}
				if done.Add(1) == total/2 {
					close(half)
				}
			}
		})
	}
	<-half
	r1.kill(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for _, p := range lease.Placements() {
		require.Equal(t, "r2", p.Target, "after r1 died: %s", p)
		require.Contains(t, p.Reason, "failed over from r1")
	}
	require.NoError(t, lease.Return(ctx))
	for k, fn := range funcs {
		got := home[fn].Snapshot()
		require.Equal(t, int64(7), got["seed"], fn)
		require.Len(t, got, total/2+1, "%s: one counter per invocation plus seed", fn)
		for i := k; i < total; i += 2 {
			if c := got[fmt.Sprintf("inv-%d", i)]; c != 1 {
				t.Fatalf("%s: invocation %d applied %d times", fn, i, c)
			}
		}
	}
	st := lease.Stats()
	t.Logf("stats: %+v", st)
	require.Equal(t, int64(total), st.Invocations)
	require.GreaterOrEqual(t, st.Failovers, int64(2))
	require.Positive(t, st.Checkpoints)
	require.NoError(t, lease.Return(ctx), "Return is idempotent")
	out, err := lease.Invoke(ctx, "count-a", []byte("after"))
	require.NoError(t, err)
	require.Equal(t, "1", string(out))
	require.Equal(t, int64(1), home["count-a"].Get("after"), "after Return, invocations run at home")
}
