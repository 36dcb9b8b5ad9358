package updraft_test

import (
	"context"
	"fmt"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// A firewall with one critical function and one that can wait: the update
// is applied, validated, and full service restored.
func ExampleOrchestrator_PrepareForUpdate() {
	device := sim.New(hal.Vector{hal.CPU: 2, hal.Memory: 4 << 30})
	orch, err := updraft.New([]updraft.Function{
		{Name: "filter", Criticality: updraft.Critical, Demand: hal.Vector{hal.CPU: 1, hal.Memory: 1 << 30}},
		{Name: "audit-log", Criticality: updraft.NonCritical, Demand: hal.Vector{hal.CPU: 2}},
	}, device, updraft.Options{
		Profiler: profile.Static{}, // no measurements: the static Demands size everything
		// The update journal (and snapshots of critical state): a
		// snapshot.FileStore or snapshot/etcdstore off the updated resource.
		Store: snapshot.NewMemStore(),
		Checks: []validate.Check{validate.Func("filter answers", func(ctx context.Context) error {
			return nil // probe the new version here
		})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	report, err := orch.PrepareForUpdate(context.Background(), updraft.UpdateFuncs{
		ApplyFunc:    func(ctx context.Context) error { return nil }, // load the new rule engine
		RollbackFunc: func(ctx context.Context) error { return nil }, // load the old one
	})
	fmt.Println("outcome:", report.Outcome, "error:", err)
	for _, d := range report.Degraded {
		fmt.Printf("%s was %s during the update\n", d.Function, d.Mode)
	}
	fmt.Println(report.PhaseNames())
	// Output:
	// outcome: committed error: <nil>
	// audit-log was disable during the update
	// [profile plan baseline migrate snapshot partition degrade update validate restore-service undo-partition]
}
