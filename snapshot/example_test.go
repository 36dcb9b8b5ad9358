package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/updraft-dev/updraft/snapshot"
)

// A host keeps its critical state in snapshot.Maps, registers them, takes a
// snapshot before an update and restores it when the update fails.
func Example() {
	ctx := context.Background()
	routes, _ := snapshot.NewMap(snapshot.MapOptions[string, string]{})
	sessions, _ := snapshot.NewMap(snapshot.MapOptions[uint64, []byte]{})
	routes.Store("10.0.0.0/8", "eth1")
	sessions.Store(42, []byte("alice"))

	eng, err := snapshot.New(snapshot.NewMemStore(), map[string]snapshot.Source{
		"routes":   routes,
		"sessions": sessions,
	}, snapshot.Options{AppVersion: "1.4.2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := eng.Snapshot(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sources:", m.Sources[0].Name, m.Sources[1].Name, "paused under 1s:", m.Pause < 1e9)

	// The update goes wrong and scribbles over the state...
	routes.Store("10.0.0.0/8", "blackhole")
	sessions.Delete(42)

	// ...so the snapshot is restored.
	if err := eng.Restore(ctx, m); err != nil {
		fmt.Println(err)
		return
	}
	via, _ := routes.Load("10.0.0.0/8")
	who, _ := sessions.Load(42)
	fmt.Println("route via", via, "- session", string(who))
	// Output:
	// sources: routes sessions paused under 1s: true
	// route via eth1 - session alice
}

// A Map's view is O(1) and immutable: later writes do not change it.
func ExampleMap_View() {
	m, _ := snapshot.NewMap(snapshot.MapOptions[string, int]{})
	m.Store("packets", 10)
	view := m.View()
	m.Store("packets", 11)
	before, _ := view.Load("packets")
	now, _ := m.Load("packets")
	fmt.Println(before, now)
	// Output: 10 11
}

// The file store writes atomically and keeps the newest snapshots; a
// snapshot sealed with a key cannot be read without it.
func ExampleNewFileStore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "snapshots")
	defer os.RemoveAll(dir)
	store, err := snapshot.NewFileStore(dir, snapshot.FileStoreOptions{Retain: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	counters, _ := snapshot.NewMap(snapshot.MapOptions[string, int64]{})
	counters.Store("dropped", 3)
	key := []byte("0123456789abcdef0123456789abcdef") // from your secret store
	eng, _ := snapshot.New(store, map[string]snapshot.Source{"counters": counters}, snapshot.Options{Key: key})
	m, err := eng.Snapshot(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	noKey, _ := snapshot.New(store, map[string]snapshot.Source{"counters": counters}, snapshot.Options{})
	err = noKey.Restore(ctx, m)
	fmt.Println(errors.Is(err, snapshot.ErrKeyRequired))
	fmt.Println(eng.Restore(ctx, m))
	// Output:
	// true
	// <nil>
}
