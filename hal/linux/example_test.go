package linux_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
)

// A data plane's forwarding function runs in a cgroup of its own; its
// statistics exporter is a separate process. During an update, forwarding
// is guaranteed a core and the exporter is held to a quarter of one and
// 256 MiB; the undo puts everything back.
func ExampleNew() {
	ctx := context.Background()
	statsPID := os.Getpid() // the exporter's process ID
	dev, err := linux.New(linux.Config{
		Bindings: []linux.Binding{
			{Function: "forward", Cgroup: "dataplane/forward"},
			{Function: "stats", PIDs: []int{statsPID}},
		},
	})
	if err != nil {
		log.Fatal(err) // names the function and cgroup or process at fault
	}
	undo, err := dev.Apply(ctx, []hal.Allocation{
		{Function: "forward", Guarantee: hal.Vector{hal.CPU: 1}, Limit: hal.Vector{hal.CPU: 2}},
		{Function: "stats", Limit: hal.Vector{hal.CPU: 0.25, hal.Memory: 256 << 20}},
	})
	if err != nil {
		log.Fatal(err) // nothing was changed
	}
	defer func() {
		if err := undo(ctx); err != nil {
			log.Print(err) // safe to call again to retry
		}
	}()
	// ... run the update ...
}

// The driver is also reachable through the hal registry, configured with
// JSON.
func Example_open() {
	dev, err := hal.Open("linux", `{"bindings": [{"function": "forward", "cgroup": "dataplane/forward", "cpus": "0-1"}]}`)
	if err != nil {
		log.Fatal(err)
	}
	capacity, err := dev.Capacity(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(capacity)
}

func ExampleParseCPUList() {
	cpus, err := linux.ParseCPUList("0-2,8,10-11")
	fmt.Println(cpus, err)
	// Output: [0 1 2 8 10 11] <nil>
}
