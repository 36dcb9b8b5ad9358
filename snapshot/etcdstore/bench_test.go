package etcdstore

import (
	"context"
	"testing"

	"github.com/updraft-dev/updraft/snapshot"
)

// BenchmarkEtcdStore measures the throughput of a 100 MB snapshot (state
// bytes per second) written through the etcd store to a real single-member
// etcd on loopback, beside the same snapshot written to the file store.
//
//	go test -run '^$' -bench EtcdStore -benchtime 3x ./snapshot/etcdstore
func BenchmarkEtcdStore(b *testing.B) {
	ctx := context.Background()
	const entries, valueBytes = 100 << 10, 1016 // 100 MiB of keys and values
	src := newState(b, entries, valueBytes)
	raw := int64(entries) * (valueBytes + 8)
	c := startCluster(b, 1)
	cli := c.client(b)

	run := func(b *testing.B, store snapshot.Store) {
		eng, err := snapshot.New(store, map[string]snapshot.Source{"state": src}, snapshot.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(raw)
		for b.Loop() {
			if _, err := eng.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("state=100MB/store=etcd", func(b *testing.B) {
		store, err := New(ctx, cli, Options{Retain: 1})
		if err != nil {
			b.Fatal(err)
		}
		run(b, store)
		b.StopTimer()
		// Keep the member's history small for the next runs.
		resp, err := cli.Get(ctx, "compact")
		if err == nil {
			_, err = cli.Compact(ctx, resp.Header.Revision)
		}
		if err != nil {
			b.Fatal(err)
		}
	})
	b.Run("state=100MB/store=file", func(b *testing.B) {
		store, err := snapshot.NewFileStore(b.TempDir(), snapshot.FileStoreOptions{Retain: 1})
		if err != nil {
			b.Fatal(err)
		}
		run(b, store)
	})
}
