package degradegrpc_test

import (
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/degrade/degradegrpc"
)

func ExampleUnaryServerInterceptor() {
	ctl := degrade.MustNew(degrade.Options{})
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(
		degradegrpc.UnaryServerInterceptor(ctl, degradegrpc.ByService)))
	defer srv.Stop()
	// Register services on srv and Serve as usual; during an update:
	err := ctl.Set("search.v1.Search", degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 100},
		"the data plane is being updated", time.Now().Add(10*time.Minute))
	fmt.Println(err)
	// Output: <nil>
}

func ExampleStatusOf() {
	now := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	ctl := degrade.MustNew(degrade.Options{Clock: func() time.Time { return now }})
	_ = ctl.Set("search.v1.Search", degrade.Policy{Mode: degrade.Disable}, "index rebuild", now.Add(time.Minute))
	_, err := ctl.Acquire("search.v1.Search")
	st := degradegrpc.StatusOf(err)
	fmt.Println(st.Code())
	fmt.Println(st.Message())
	// Output:
	// Unavailable
	// "search.v1.Search" is temporarily unavailable (index rebuild). Full service is expected by 2026-11-26 22:01:00 UTC. Please try again in 60 seconds.
}
