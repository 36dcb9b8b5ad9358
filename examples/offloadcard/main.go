// Command offloadcard is a complete host on a custom HAL driver: a
// simulated SmartNIC (package card, registered as "offloadcard") whose
// queue pairs and flow-table entries are shared among five functions, kept
// serving by an updraft.Orchestrator through two updates of the card's
// firmware, one committed and one rolled back.
//
//	go run ./examples/offloadcard
//
// What it shows, in the order a driver author meets it:
//
//   - the driver is opened by name (hal.Open) from a JSON configuration;
//   - the functions' demand is in the card's own units (nic.queue,
//     nic.flow), measured through the meter the driver offers
//     (hal.Meter: Card.Usage) and fed to the profiler as profile.Sample
//     Usage; a function never measured (dpi, new in this release) is
//     sized by its static Function.Demand;
//   - the card tells the planner its units (hal.Units: whole queues,
//     whole flow entries), so every allocation is one the card accepts;
//   - the Orchestrator applies the plan to the card for the update
//     window, validates the new firmware, and undoes the plan after both
//     updates: the card ends exactly as it began.
//
// run also prints the planner alone on the same card (planner.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "offloadcard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	if err := runPlanner(ctx, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n=== the host under an Orchestrator ===")
	h, err := newHost(ctx, out)
	if err != nil {
		return err
	}
	return h.run(ctx)
}
