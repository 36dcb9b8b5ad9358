package migrate_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/migrate"
)

// Moving a function to spare local capacity: it runs in-process on the
// LocalTarget's slots, and its state never leaves home.
func ExampleMover_Migrate() {
	ctx := context.Background()
	spare := migrate.NewLocalTarget("spare-cores", migrate.LocalOptions{Slots: 2})
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := migrate.New([]migrate.Target{spare}, migrate.Options{BufferDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	upper := func(_ context.Context, p []byte) ([]byte, error) { return []byte(strings.ToUpper(string(p))), nil }
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "upper", Local: upper}})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := lease.Invoke(ctx, "upper", []byte("hello"))
	fmt.Println(string(out))
	p := lease.Placements()[0]
	fmt.Println(p.Function, "->", p.Target)
	fmt.Println(lease.Return(ctx))
	// Output:
	// HELLO
	// upper -> spare-cores
	// <nil>
}

// A region serves the same Go function with a Handler; the host moves it
// there with its state, invokes it remotely, and brings the state back.
func ExampleHandler() {
	ctx := context.Background()
	key := []byte("shared-secret-between-regions")

	// In the remote region.
	remoteCounters := &migrate.MapState{}
	h := migrate.NewHandler(migrate.HandlerOptions{Key: key})
	h.Register("count", count(remoteCounters), remoteCounters)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	// At home.
	counters := &migrate.MapState{}
	counters.Add("visits", 10)
	region, _ := migrate.NewCloudEventsTarget("eu-1", "http://"+ln.Addr().String()+"/", migrate.CloudEventsOptions{Region: "eu-west"})
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := migrate.New([]migrate.Target{region}, migrate.Options{Key: key, BufferDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(counters), State: counters, Regions: []string{"eu-west"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := lease.Invoke(ctx, "count", []byte("visits"))
	fmt.Println("remote answer:", string(out), "home still has:", counters.Get("visits"))
	if err := lease.Return(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after return:", counters.Get("visits"))
	// Output:
	// remote answer: 11 home still has: 10
	// after return: 11
}

// When a target fails, its functions move on, and the placement says why.
func ExampleLease_Placements() {
	ctx := context.Background()
	primary := migrate.NewLocalTarget("primary", migrate.LocalOptions{})
	standby := migrate.NewLocalTarget("standby", migrate.LocalOptions{CostPerMillion: 1})
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := migrate.New([]migrate.Target{primary, standby}, migrate.Options{BufferDir: dir, FailoverAfter: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	echo := func(_ context.Context, p []byte) ([]byte, error) { return p, nil }
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "echo", Local: echo}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(lease.Placements()[0].Target)
	primary.SetDown(true)
	out, _ := lease.Invoke(ctx, "echo", []byte("still served"))
	fmt.Println(string(out))
	p := lease.Placements()[0]
	fmt.Println(p.Target+":", p.Reason)
	_ = lease.Return(ctx)
	// Output:
	// primary
	// still served
	// standby: failed over from primary (migrate: target unreachable: local target primary is down); cheapest fitting target (1 per million invocations, 0s round trip) of 1 candidates; passed over: primary already failed
}
