// Command quickstart wires a small data-plane application of four functions
// on a simulated device and runs two updates through updraft: one that
// commits, and one whose validation fails and is rolled back. It needs
// nothing but Go: the "remote region" is a CloudEvents server on loopback.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

const gib = 1 << 30

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// app is the host application: a tiny router.
type app struct {
	routes   *snapshot.Map[string, string] // forward's critical state
	sessions *snapshot.Map[uint64, string] // conntrack's critical state
	counters *migrate.MapState             // stats' state: travels with it
}

func (a *app) forward(_ context.Context, dst []byte) ([]byte, error) {
	port, ok := a.routes.Load(string(dst))
	if !ok {
		return nil, fmt.Errorf("no route to %s", dst)
	}
	return []byte(port), nil
}

// countPackets is the stats function; the same code runs locally and in the
// remote region, each on its own copy of the counters.
func countPackets(counters *migrate.MapState) migrate.Func {
	return func(_ context.Context, payload []byte) ([]byte, error) {
		n := counters.Add(string(payload), 1)
		return []byte(strconv.FormatInt(n, 10)), nil
	}
}

func run(ctx context.Context, out io.Writer) error {
	a := &app{counters: &migrate.MapState{}}
	var err error
	if a.routes, err = snapshot.NewMap(snapshot.MapOptions[string, string]{}); err != nil {
		return err
	}
	if a.sessions, err = snapshot.NewMap(snapshot.MapOptions[uint64, string]{}); err != nil {
		return err
	}
	a.routes.Store("10.0.0.0/8", "eth0")
	a.routes.Store("172.16.0.0/12", "eth1")
	for i := range uint64(1000) {
		a.sessions.Store(i, "established")
	}

	// A remote region: a CloudEvents server on loopback hosting stats.
	key := []byte("quickstart shared key, 32 bytes!")
	region, stopRegion, err := startRegion(key)
	if err != nil {
		return err
	}
	defer stopRegion()
	target, err := migrate.NewCloudEventsTarget("eu-west-faas", region, migrate.CloudEventsOptions{Region: "eu-west", Key: key})
	if err != nil {
		return err
	}
	bufferDir, err := os.MkdirTemp("", "updraft-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bufferDir)
	mover, err := migrate.New([]migrate.Target{target}, migrate.Options{BufferDir: bufferDir})
	if err != nil {
		return err
	}

	// Two hours of measurements, one a minute, as the in-process meter
	// would have recorded them.
	analyzer, err := profile.New(profile.Options{})
	if err != nil {
		return err
	}
	observeHistory(analyzer, time.Now())

	device := sim.New(hal.Vector{hal.CPU: 4, hal.Memory: 8 * gib})
	orch, err := updraft.New([]updraft.Function{
		{Name: "forward", Criticality: updraft.Critical, EntryPoint: true, DependsOn: []string{"conntrack"},
			State: a.routes, Func: a.forward},
		{Name: "conntrack", State: a.sessions}, // Auto: judged from evidence
		{Name: "stats", Criticality: updraft.NonCritical, Func: countPackets(a.counters),
			Remote: &updraft.Remote{State: a.counters, Regions: []string{"eu-west"}}},
		{Name: "reports", Criticality: updraft.NonCritical,
			Degrade: &degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 5, Burst: 5}},
	}, device, updraft.Options{
		Profiler:   analyzer,
		Migrator:   updraft.Mover(mover),
		Store:      snapshot.NewMemStore(), // use snapshot.NewFileStore or snapshot/etcdstore off the updated resource
		AppVersion: "2.0.0",
		Window:     2 * time.Minute,
		Checks: []validate.Check{
			validate.Func("forward routes 10.0.0.0/8", func(ctx context.Context) error {
				port, err := a.forward(ctx, []byte("10.0.0.0/8"))
				if err != nil {
					return err
				}
				if string(port) != "eth0" {
					return fmt.Errorf("10.0.0.0/8 goes to %s, want eth0", port)
				}
				return nil
			}),
			validate.Func("session table intact", func(context.Context) error {
				if n := a.sessions.Len(); n != 1000 {
					return fmt.Errorf("%d sessions, want 1000", n)
				}
				return nil
			}),
		},
	})
	if err != nil {
		return err
	}

	// Update 1: a good version. During it, stats is served by the remote
	// region and reports is throttled.
	good := updraft.UpdateFuncs{
		ApplyFunc: func(ctx context.Context) error {
			for range 100 {
				if _, err := orch.Invoke(ctx, "stats", []byte("packets")); err != nil {
					return fmt.Errorf("stats during the update: %w", err)
				}
			}
			a.routes.Store("192.168.0.0/16", "eth2") // the new version adds a route
			return nil
		},
		RollbackFunc: func(context.Context) error { return nil },
	}
	report, err := orch.PrepareForUpdate(ctx, good)
	fmt.Fprintln(out, "=== update 2.1.0 (a good version)")
	fmt.Fprintln(out, report)
	if err != nil {
		return fmt.Errorf("the good update did not commit: %w", err)
	}
	fmt.Fprintf(out, "after: %d routes; stats counted %d packets remotely and brought them home\n\n",
		a.routes.Len(), a.counters.Get("packets"))

	// Update 2: a bad version that loses the route table. Validation
	// catches it, the host's rollback runs and the snapshot is restored.
	bad := updraft.UpdateFuncs{
		ApplyFunc: func(context.Context) error {
			a.routes.Range(func(k, _ string) bool { a.routes.Delete(k); return true })
			return nil
		},
		RollbackFunc: func(context.Context) error { return nil }, // reload the previous binary here
	}
	report, err = orch.PrepareForUpdate(ctx, bad)
	fmt.Fprintln(out, "=== update 2.2.0 (a version that loses its routes)")
	fmt.Fprintln(out, report)
	if err == nil {
		return errors.New("the bad update committed")
	}
	fmt.Fprintf(out, "after: %d routes restored from the snapshot; the update was %s\n", a.routes.Len(), report.Outcome)
	return nil
}

// startRegion serves stats over CloudEvents on a loopback port and returns
// its URL and a stop function.
func startRegion(key []byte) (string, func(), error) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: key})
	remote := &migrate.MapState{} // filled from the host's counters when stats moves here
	h.Register("stats", countPackets(remote), remote)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// observeHistory feeds the analyzer two hours of per-minute samples: forward
// and conntrack busy and steady, following the same request rate; stats and
// reports heavier and bursty.
func observeHistory(a *profile.Analyzer, now time.Time) {
	for m := 120; m > 0; m-- {
		t := now.Add(-time.Duration(m) * time.Minute)
		wave := 1 + 0.2*math.Sin(float64(m)/10) // the request rate's daily shape, compressed
		calls := int64(6000 * wave)
		a.Observe(
			profile.Sample{Function: "forward", Time: t, Interval: time.Minute, Calls: calls,
				Usage: hal.Vector{hal.CPU: 0.9 * wave, hal.Memory: 1 * gib}},
			profile.Sample{Function: "conntrack", Time: t, Interval: time.Minute, Calls: calls,
				Usage: hal.Vector{hal.CPU: 0.4 * wave, hal.Memory: 0.5 * gib}, StateBytes: 4 << 20},
			profile.Sample{Function: "stats", Time: t, Interval: time.Minute, Calls: 60,
				Usage: hal.Vector{hal.CPU: 1.2 + 0.3*float64(m%7)/7, hal.Memory: 1 * gib}},
			profile.Sample{Function: "reports", Time: t, Interval: time.Minute, Calls: int64(m % 15),
				Usage: hal.Vector{hal.CPU: 0.2 + 1.6*float64(m%15/14), hal.Memory: 2 * gib}},
		)
	}
}
