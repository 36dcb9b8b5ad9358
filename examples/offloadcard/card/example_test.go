package card_test

import (
	"context"
	"fmt"

	"github.com/updraft-dev/updraft/examples/offloadcard/card"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
)

// Open the card through the driver registry, plan it with whole units and
// apply the plan; Undo puts the card back as it was.
func Example() {
	ctx := context.Background()
	dev, err := hal.Open("offloadcard", `{"queues": 8, "flows": 1000}`)
	if err != nil {
		panic(err)
	}
	capacity, _ := dev.Capacity(ctx)
	planner, _ := partition.New(partition.Options{Granularity: card.Granularity()})
	plan, err := planner.Plan(ctx, capacity, []partition.Demand{
		{Function: "firewall", Critical: true, Peak: hal.Vector{card.Queue: 2, card.Flow: 300}},
		{Function: "mirror", Expected: hal.Vector{card.Queue: 1, card.Flow: 100}, Peak: hal.Vector{card.Queue: 4, card.Flow: 400}},
	})
	if err != nil {
		panic(err)
	}
	undo, err := dev.Apply(ctx, plan.Allocations)
	if err != nil {
		panic(err)
	}
	fmt.Println(dev.(*card.Card).QueueOwners())
	fmt.Println(dev.(*card.Card).FlowQuotas()["mirror"])
	_ = undo(ctx)
	fmt.Println(dev.(*card.Card).QueueOwners())
	// Output:
	// [firewall firewall firewall mirror mirror mirror mirror ]
	// {400 400}
	// [       ]
}
