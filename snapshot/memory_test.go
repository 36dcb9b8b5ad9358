//go:build !race

// The race detector makes sync.Pool drop a quarter of the buffers put back,
// so allocation counts grow with the work: this file is built without it
// (.ci/run runs it in its own step).

package snapshot

import (
	"context"
	"hash/crc32"
	"io"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// streamSource's view writes size bytes generated on the fly, and its
// Restore reads them into a running checksum: neither holds the state, so
// what a snapshot or a restore allocates is the engine's alone.
type streamSource struct {
	size   int64
	blocks [][]byte // cycled through; made once
	buf    []byte   // Restore's read buffer; made once
	want   uint32   // checksum of what the view wrote
	got    uint32   // checksum of what Restore read
	read   int64
}

func newStreamSource(size int64) *streamSource {
	s := &streamSource{size: size, buf: make([]byte, 64<<10)}
	for i := range 16 {
		s.blocks = append(s.blocks, testValue(uint64(i), 64<<10))
	}
	return s
}

func (s *streamSource) Capture(context.Context) (View, error) { return s, nil }

func (s *streamSource) WriteTo(w io.Writer) (int64, error) {
	var n int64
	s.want = 0
	for i := 0; n < s.size; i++ {
		b := s.blocks[i%len(s.blocks)]
		b = b[:min(int64(len(b)), s.size-n)]
		k, err := w.Write(b)
		s.want = crc32.Update(s.want, castagnoli, b[:k])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *streamSource) Restore(_ context.Context, r io.Reader) error {
	s.got, s.read = 0, 0
	for {
		k, err := r.Read(s.buf)
		s.got = crc32.Update(s.got, castagnoli, s.buf[:k])
		s.read += int64(k)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// allocated returns the bytes fn allocates. The GC is off meanwhile, so
// that pooled buffers stay pooled and every allocation is counted.
func allocated(t *testing.T, fn func()) uint64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Snapshot and restore stream: what they allocate does not grow with the
// state's size. Restore keeps up to Options.RestoreMemory of a plain
// source's state to avoid a second read, and no more.
func TestMemoryDoesNotGrowWithState(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB")
	}
	ctx := context.Background()
	measure := func(size int64, restoreMemory int64) (snap, restore uint64) {
		src := newStreamSource(size)
		store, err := NewFileStore(t.TempDir(), FileStoreOptions{Retain: 1})
		require.NoError(t, err)
		e, err := New(store, map[string]Source{"stream": src}, Options{RestoreMemory: restoreMemory, Concurrency: 2})
		require.NoError(t, err)
		_, err = e.Snapshot(ctx) // warms the pools
		require.NoError(t, err)
		var m Manifest
		snap = allocated(t, func() { m, err = e.Snapshot(ctx) })
		require.NoError(t, err)
		require.NoError(t, e.Restore(ctx, m)) // warms the pools
		restore = allocated(t, func() { err = e.Restore(ctx, m) })
		require.NoError(t, err)
		require.Equal(t, size, src.read)
		require.Equal(t, src.want, src.got)
		return snap, restore
	}
	// With two workers, a snapshot or a restore has up to about 4 MiB of
	// chunks in flight, whatever the state's size (how much of that a run
	// allocates afresh depends on scheduling); bound is well above that and
	// well below the large state.
	const small, large = 8 << 20, 96 << 20
	const bound = 8 << 20
	for _, size := range []int64{small, large} {
		snap, restore := measure(size, -1)
		t.Logf("state of %d MiB, read twice: snapshot allocates %d KiB, restore %d KiB", size>>20, snap>>10, restore>>10)
		require.Less(t, snap, uint64(bound), "snapshot of %d MiB", size>>20)
		require.Less(t, restore, uint64(bound), "restore of %d MiB", size>>20)
	}

	// By default, a state within DefaultRestoreMemory is kept in memory
	// once (the verified chunks, nothing more) instead of read twice; a
	// larger one is read twice.
	_, kept := measure(small, 0)
	_, large96 := measure(large, 0)
	t.Logf("default: restore allocates %d KiB at 8 MiB, %d KiB at 96 MiB", kept>>10, large96>>10)
	require.Less(t, kept, uint64(small+bound/2), "restore keeping an 8 MiB state")
	require.Less(t, large96, uint64(bound), "restore of a state larger than DefaultRestoreMemory")
}
