package snapshot

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPacedSnapshot measures what Options.CPUShare costs and gives:
// snapshots of the 10 MB ShardedMap state to a FileStore (fsync included),
// unpaced on every core (the default), unpaced on one goroutine, and paced
// at 1, 0.5 and 0.25 of a core. It reports the process's CPU time per
// snapshot (user + system, from getrusage: the encoder, the writer, the
// garbage collector and the fsync) and that CPU time over the wall time:
// pacing must leave the first about as it is and bring the second down
// to about the share.
//
//	go test -run '^$' -bench PacedSnapshot -benchtime 20x -count 3 ./snapshot
func BenchmarkPacedSnapshot(b *testing.B) {
	s := stateOf(b, 10<<20)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"unpaced-all-cores", Options{}},
		{"unpaced-one-goroutine", Options{Concurrency: 1}},
		{"share=1", Options{CPUShare: 1}},
		{"share=0.5", Options{CPUShare: 0.5}},
		{"share=0.25", Options{CPUShare: 0.25}},
	} {
		b.Run(c.name, func(b *testing.B) {
			store, err := NewFileStore(b.TempDir(), FileStoreOptions{Retain: 1})
			if err != nil {
				b.Fatal(err)
			}
			c.opts.AppVersion = "bench"
			e, err := New(store, map[string]Source{"state": s.sharded}, c.opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var cpu, wall time.Duration
			for b.Loop() {
				c0, t0 := processCPU(), time.Now()
				if _, err := e.Snapshot(ctx); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(t0)
				cpu += processCPU() - c0
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(cpu)/float64(wall), "cpu/wall")
		})
	}
}
