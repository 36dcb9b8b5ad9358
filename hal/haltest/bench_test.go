package haltest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
)

// BenchmarkApplyUndo measures one Apply and its Undo of two allocations
// on hal/sim, plain (the baseline) and journaled, with the state in memory
// and in a file (each change written, fsynced and renamed; the journal
// callback only copies the record, as a caller's store would before its
// own fsync).
func BenchmarkApplyUndo(b *testing.B) {
	ctx := context.Background()
	allocs := []hal.Allocation{
		{Function: "a", Guarantee: hal.Vector{hal.CPU: 1}, Limit: hal.Vector{hal.CPU: 2}},
		{Function: "b", Guarantee: hal.Vector{hal.CPU: 0.5, hal.Memory: 1 << 20}},
	}
	for _, file := range []bool{false, true} {
		for _, journaled := range []bool{false, true} {
			b.Run(fmt.Sprintf("file=%t/journaled=%t", file, journaled), func(b *testing.B) {
				cfg := sim.Config{Capacity: hal.Vector{hal.CPU: 4, hal.Memory: 1 << 30}}
				if file {
					cfg.StatePath = filepath.Join(b.TempDir(), "sim.json")
				}
				d, err := sim.Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				var record []byte
				journal := func(r []byte) error { record = append(record[:0], r...); return nil }
				b.ReportAllocs()
				for b.Loop() {
					var undo hal.Undo
					if journaled {
						undo, err = d.ApplyJournaled(ctx, allocs, journal)
					} else {
						undo, err = d.Apply(ctx, allocs)
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := undo(ctx); err != nil {
						b.Fatal(err)
					}
				}
				if journaled && len(record) == 0 {
					b.Fatal("nothing journaled")
				}
			})
		}
	}
}
