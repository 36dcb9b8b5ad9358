package updraft_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// The wiring the README shows, compiled and run: a router with a critical
// route table in a snapshot container, a connection tracker judged
// critical because the router depends on it, per-flow statistics that
// may move to another region, and reports that are throttled when they
// do not fit. (A real host passes profile.New's analyzer instead of
// static demands, hal/linux or its own driver instead of hal/sim, and a
// region's URL instead of this test server.)
func Example_wiring() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "updraft-example-")
	defer os.RemoveAll(dir)
	key := []byte("an-hmac-key-of-32-bytes-or-more!")

	// Another region serving the statistics function (see examples/region).
	regionState := &migrate.MapState{}
	handler := migrate.NewHandler(migrate.HandlerOptions{Key: key})
	handler.Register("stats", countFlows(regionState), regionState)
	region := httptest.NewServer(handler)
	defer region.Close()

	// Critical state lives in a container whose capture pause is
	// microseconds.
	routes, _ := snapshot.NewShardedMap(snapshot.MapOptions[string, string]{})
	routes.Store("10.0.0.0/8", "eth0")
	counters := &migrate.MapState{}

	_ = os.MkdirAll(filepath.Join(dir, "leases"), 0o755)
	_ = os.MkdirAll(filepath.Join(dir, "store"), 0o755)
	target, _ := migrate.NewCloudEventsTarget("eu-west", region.URL, migrate.CloudEventsOptions{Region: "eu-west", Key: key})
	mover, _ := migrate.New([]migrate.Target{target}, migrate.Options{BufferDir: filepath.Join(dir, "leases")})
	store, _ := snapshot.NewFileStore(filepath.Join(dir, "store"), snapshot.FileStoreOptions{}) // off the updated resource
	degrader, _ := degrade.New(degrade.Options{})

	orch, err := updraft.New([]updraft.Function{
		{Name: "forward", Criticality: updraft.Critical, EntryPoint: true, DependsOn: []string{"conntrack"}, State: routes,
			Demand: hal.Vector{hal.CPU: 1}},
		{Name: "conntrack", Demand: hal.Vector{hal.CPU: 0.5}}, // Auto: critical because forward depends on it
		{Name: "stats", Criticality: updraft.NonCritical, Func: countFlows(counters), Demand: hal.Vector{hal.CPU: 4},
			Remote: &updraft.Remote{State: counters, Regions: []string{"eu-west"}}},
		{Name: "reports", Criticality: updraft.NonCritical, Demand: hal.Vector{hal.CPU: 4},
			Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 10, Burst: 10}}, // applied only if the plan leaves it out
	}, sim.New(hal.Vector{hal.CPU: 4}), updraft.Options{
		Profiler: profile.Static{}, // profile.New(...) measures the host instead
		Migrator: updraft.Mover(mover),
		Store:    store, // snapshots and the update journal
		Degrader: degrader,
		// Throttles tighten while critical latency rises above its
		// baseline: the Orchestrator runs the controller's guard for the
		// window, fed by Invoke and degrader.CriticalMiddleware.
		AdaptiveDegrade: true,
		Checks: []validate.Check{validate.Func("routes answer", func(context.Context) error {
			if v, ok := routes.Load("10.0.0.0/8"); !ok || v != "eth0" {
				return fmt.Errorf("10.0.0.0/8 routes to %q", v)
			}
			return nil
		})},
	})
	if err != nil {
		fmt.Println(err) // bad annotations are named here, before anything changes
		return
	}
	mux := http.NewServeMux() // the host's data-plane server
	mux.Handle("/reports", degrader.Middleware("reports", http.NotFoundHandler()))
	mux.Handle("/status", degrader.StatusHandler()) // what is reduced, why, until when

	// A process that starts finishes first what a crash interrupted.
	if report, err := orch.Resume(ctx, nil); err != nil {
		fmt.Println(report, err)
	}
	report, err := orch.PrepareForUpdate(ctx, updraft.UpdateFuncs{
		ApplyFunc:    func(context.Context) error { routes.Store("192.168.0.0/16", "eth1"); return nil },
		RollbackFunc: func(context.Context) error { return nil },
	})
	fmt.Println(report.Outcome, err)
	for _, p := range report.Placements {
		fmt.Println(p.Function, "ran in", p.Region)
	}
	for _, d := range report.Degraded {
		fmt.Println(d.Function, "was", d.Mode)
	}
	// Output:
	// committed <nil>
	// stats ran in eu-west
	// reports was throttle
}

func countFlows(st *migrate.MapState) migrate.Func {
	return func(_ context.Context, flow []byte) ([]byte, error) {
		st.Add(string(flow), 1)
		return nil, nil
	}
}
