package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/updraft-dev/updraft/examples/offloadcard/card" // registers "offloadcard"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
)

// config describes the card: 16 queue pairs, a 4096-entry flow table, and
// the functions it serves (its virtual functions).
const config = `{"queues": 16, "flows": 4096, "functions": ["firewall", "nat", "telemetry", "dpi", "mirror"]}`

// demands is what the profiler would forecast for the update window.
var demands = []partition.Demand{
	{Function: "firewall", Critical: true,
		Expected: hal.Vector{card.Queue: 3, card.Flow: 600}, Peak: hal.Vector{card.Queue: 4, card.Flow: 1000}},
	{Function: "nat", Critical: true,
		Expected: hal.Vector{card.Queue: 1, card.Flow: 400}, Peak: hal.Vector{card.Queue: 2, card.Flow: 700}},
	{Function: "telemetry", Weight: 2,
		Expected: hal.Vector{card.Queue: 1, card.Flow: 200}, Peak: hal.Vector{card.Queue: 3, card.Flow: 800}},
	{Function: "mirror",
		Expected: hal.Vector{card.Queue: 1, card.Flow: 100}, Peak: hal.Vector{card.Queue: 2, card.Flow: 400}},
	{Function: "dpi",
		Expected: hal.Vector{card.Queue: 6, card.Flow: 1500}, Peak: hal.Vector{card.Queue: 8, card.Flow: 2500}},
}

// runPlanner shows the driver and the planner alone: the card opened by
// name, a plan over forecast demands in the card's units, applied, a burst
// the card admits and one it refuses, and the plan undone.
func runPlanner(ctx context.Context, out io.Writer) error {
	dev, err := hal.Open("offloadcard", config)
	if err != nil {
		return err
	}
	nic := dev.(*card.Card)
	capacity, err := dev.Capacity(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "drivers: %s\ncard capacity: %s\n\n", strings.Join(hal.Drivers(), ", "), capacity)

	planner, err := partition.New(partition.Options{Units: hal.UnitsOf(dev)})
	if err != nil {
		return err
	}
	plan, err := planner.Plan(ctx, capacity, demands)
	if err != nil {
		return err
	}
	printPlan(out, plan)

	undo, err := dev.Apply(ctx, plan.Allocations)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\napplied:")
	printCard(out, nic)

	fmt.Fprintln(out, "\ntraffic during the update:")
	fw, _ := plan.Allocation("firewall")
	burst := int(fw.Guarantee[card.Flow]) + 200
	fmt.Fprintf(out, "  firewall installs %d flows (reserved %v): %s\n", burst, fw.Guarantee[card.Flow], outcome(nic.InstallFlows("firewall", burst)))
	tel, _ := plan.Allocation("telemetry")
	over := int(tel.Limit[card.Flow]) + 1
	fmt.Fprintf(out, "  telemetry installs %d flows (limit %v): %s\n", over, tel.Limit[card.Flow], outcome(nic.InstallFlows("telemetry", over)))

	if err := undo(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nafter undo:")
	printCard(out, nic)
	return nil
}

func printPlan(out io.Writer, plan partition.Plan) {
	fmt.Fprintln(out, "plan:")
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  function\tguarantee\tlimit\t")
	for _, a := range plan.Allocations {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", a.Function, a.Guarantee, a.Limit)
	}
	tw.Flush()
	fmt.Fprintf(out, "  reserve: %s\n", plan.Reserve)
	for _, m := range plan.DoesNotFit {
		fmt.Fprintf(out, "  does not fit: %s (needs %s)\n", m.Function, m.Need)
	}
	fmt.Fprintln(out, "why:")
	for _, a := range plan.Allocations {
		fmt.Fprintf(out, "  %s: %s\n", a.Function, plan.Explain(a.Function))
	}
	for _, m := range plan.DoesNotFit {
		fmt.Fprintf(out, "  %s: %s\n", m.Function, plan.Explain(m.Function))
	}
}

func printCard(out io.Writer, nic *card.Card) {
	owners := nic.QueueOwners()
	for i, o := range owners {
		if o == "" {
			owners[i] = "-"
		}
	}
	fmt.Fprintf(out, "  queues: %s\n", strings.Join(owners, " "))
	quotas := nic.FlowQuotas()
	if len(quotas) == 0 {
		fmt.Fprintln(out, "  flow quotas: none")
	}
	for _, f := range []string{"dpi", "firewall", "mirror", "nat", "telemetry"} {
		if q, ok := quotas[f]; ok {
			fmt.Fprintf(out, "  flows %-9s reserved %4d, limit %4d\n", f, q.Reserved, q.Limit)
		}
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, card.ErrOverLimit), errors.Is(err, card.ErrTableFull):
		return "refused by the card (" + err.Error() + ")"
	default:
		return "error: " + err.Error()
	}
}
