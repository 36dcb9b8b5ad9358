package partition_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
)

// Plan a small machine: a critical router, two non-critical functions that
// share what is left by weight, and a batch job that does not fit.
func ExamplePlanner_Plan() {
	planner, err := partition.New(partition.Options{}) // 10% margin, 10% reserve
	if err != nil {
		panic(err)
	}
	capacity := hal.Vector{hal.CPU: 8, hal.Memory: 16 << 30}
	plan, err := planner.Plan(context.Background(), capacity, []partition.Demand{
		{Function: "router", Critical: true,
			Expected: hal.Vector{hal.CPU: 1.5, hal.Memory: 1 << 30}, Peak: hal.Vector{hal.CPU: 2, hal.Memory: 2 << 30}},
		{Function: "metrics", Weight: 2,
			Expected: hal.Vector{hal.CPU: 0.5, hal.Memory: 512 << 20}, Peak: hal.Vector{hal.CPU: 2, hal.Memory: 1 << 30}},
		{Function: "logs",
			Expected: hal.Vector{hal.CPU: 0.5, hal.Memory: 256 << 20}, Peak: hal.Vector{hal.CPU: 3, hal.Memory: 1 << 30}},
		{Function: "batch",
			Expected: hal.Vector{hal.CPU: 4, hal.Memory: 8 << 30}, Peak: hal.Vector{hal.CPU: 6, hal.Memory: 12 << 30}},
	})
	if err != nil {
		panic(err)
	}
	for _, a := range plan.Allocations {
		fmt.Printf("%-8s guarantee %-30s limit %s\n", a.Function, a.Guarantee, a.Limit)
	}
	fmt.Println("reserve", plan.Reserve)
	for _, m := range plan.DoesNotFit {
		fmt.Printf("%s does not fit: %s\n", m.Function, m.Reason)
	}
	fmt.Println("logs:", plan.Explain("logs"))
	// Output:
	// logs     guarantee cpu=2 cores memory=682.7MiB    limit cpu=2 cores memory=682.7MiB
	// metrics  guarantee cpu=2 cores memory=1GiB        limit cpu=2 cores memory=1GiB
	// router   guarantee cpu=2.2 cores memory=2.2GiB    limit cpu=4 cores memory=14.33GiB
	// reserve cpu=1.8 cores memory=12.13GiB
	// batch does not fit: non-critical, weight 1: needs at least 66.7% of its forecast peak; not enough cpu left when the fair fill reached it, nor after it
	// logs: non-critical, weight 1: fair share 66.7% of its forecast peak (needs 25%); the fill stopped at cpu
}

// A plan that cannot guarantee every critical function fails before
// anything changes, and says what is missing.
func ExampleShortfallError() {
	planner, _ := partition.New(partition.Options{Margin: partition.NoMargin})
	_, err := planner.Plan(context.Background(), hal.Vector{hal.CPU: 4}, []partition.Demand{
		{Function: "router", Critical: true, Peak: hal.Vector{hal.CPU: 3}},
		{Function: "firewall", Critical: true, Peak: hal.Vector{hal.CPU: 2}},
	})
	var short *partition.ShortfallError
	if errors.As(err, &short) {
		fmt.Println(short.Shortfall, short.Functions)
		fmt.Println(err)
	}
	// Output:
	// cpu=1 cores [firewall router]
	// partition: critical functions cannot all be guaranteed their peak plus margin: short of cpu by 1 cores (need 5 cores, capacity 4 cores); critical functions involved: firewall, router
}

// A plan prints as a table. The fair fill stops where batch would join
// (at 75% of every peak) because its minimum does not fit; logs keeps 75%
// of its peak, and the unused core and a quarter joins the reserve the
// critical router may burst into.
func ExamplePlan_String() {
	planner, _ := partition.New(partition.Options{Margin: partition.NoMargin, Reserve: partition.NoReserve})
	plan, _ := planner.Plan(context.Background(), hal.Vector{hal.CPU: 4}, []partition.Demand{
		{Function: "router", Critical: true, Peak: hal.Vector{hal.CPU: 2}},
		{Function: "logs", Expected: hal.Vector{hal.CPU: 0.5}, Peak: hal.Vector{hal.CPU: 1}},
		{Function: "batch", Expected: hal.Vector{hal.CPU: 3}, Peak: hal.Vector{hal.CPU: 4}},
	})
	fmt.Print(plan)
	// Output:
	// function  guarantee       limit
	// logs      cpu=0.75 cores  cpu=0.75 cores
	// router    cpu=2 cores     cpu=3.25 cores
	// reserve: cpu=1.25 cores
	// does not fit (1): batch, needs cpu=3 cores: non-critical, weight 1: needs at least 75% of its forecast peak; not enough cpu left when the fair fill reached it, nor after it
}
