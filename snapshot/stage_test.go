package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// dumpMap copies what a map-like source holds into a Go map.
func dumpMap[K comparable, V any](rangeFn func(func(K, V) bool)) map[K]V {
	out := map[K]V{}
	rangeFn(func(k K, v V) bool {
		out[k] = v
		return true
	})
	return out
}

// stagedSnapshot writes a snapshot of a Map (a Stager) and a plain source,
// in small chunks, and returns the store, its manifest and its bytes.
func stagedSnapshot(t testing.TB, c Compression) (*MemStore, Manifest, []byte) {
	t.Helper()
	routes, err := NewMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	fillMap(t, routes, 300, 100)
	plain := &faultySource{data: bytes.Repeat([]byte("plain "), 1000)}
	store := NewMemStore()
	e, err := New(store, map[string]Source{"routes": routes, "z": plain}, Options{AppVersion: "1", ChunkBytes: 2048, Compression: c})
	require.NoError(t, err)
	m, err := e.Snapshot(context.Background())
	require.NoError(t, err)
	raw, ok := store.Bytes(m.ID)
	require.True(t, ok)
	return store, m, raw
}

func TestStagedRestoreOfCorruptSnapshotLeavesMapUnchanged(t *testing.T) {
	for _, c := range []Compression{CompressionS2, CompressionNone} {
		t.Run(c.String(), func(t *testing.T) {
			store, m, raw := stagedSnapshot(t, c)
			offs := frameOffsets(t, raw)
			nData := len(m.Sources[0].Chunks) + len(m.Sources[1].Chunks)
			require.Len(t, offs, nData+2)
			require.Greater(t, len(m.Sources[0].Chunks), stageChunks, "the Map's bytes should span more chunks than the staging queue holds")
			manifestOff, endOff := offs[nData], offs[nData+1]
			lastMapFrame := offs[len(m.Sources[0].Chunks)-1]

			// A payload byte of the Map's last chunk altered and its frame
			// checksum recomputed: the frame reads fine, the Map decodes it
			// (uncompressed) or s2 refuses it; only the manifest's raw
			// checksum tells. The Map must not change either way.
			altered := bytes.Clone(raw)
			altered[lastMapFrame+frameHeaderSize+3] ^= 0x01
			fixCRC(altered, lastMapFrame)

			cases := map[string][]byte{
				"last map chunk payload":        flipAt(raw, lastMapFrame+frameHeaderSize+5),
				"plain source payload":          flipAt(raw, offs[nData-1]+frameHeaderSize+1),
				"manifest payload":              flipAt(raw, manifestOff+frameHeaderSize+3),
				"end frame checksum":            flipAt(raw, len(raw)-1),
				"payload altered, crc fixed":    altered,
				"truncated after the map":       raw[:offs[len(m.Sources[0].Chunks)]],
				"truncated before the end":      raw[:endOff],
				"truncated inside the manifest": raw[:manifestOff+frameHeaderSize+1],
				"truncated one byte short":      raw[:len(raw)-1],
			}
			for name, bad := range cases {
				t.Run(name, func(t *testing.T) {
					routes, err := NewMap(MapOptions[uint64, []byte]{})
					require.NoError(t, err)
					for i := range uint64(5) {
						routes.Store(1000+i, []byte(fmt.Sprintf("before %d", i)))
					}
					before := dumpMap(routes.Range)
					plain := &faultySource{}
					e, err := New(store, map[string]Source{"routes": routes, "z": plain}, Options{AppVersion: "1"})
					require.NoError(t, err)
					store.Put(m.ID, bad)
					err = e.Restore(context.Background(), Manifest{ID: m.ID})
					require.ErrorIs(t, err, ErrCorrupt)
					if diff := cmp.Diff(before, dumpMap(routes.Range)); diff != "" {
						t.Fatalf("a corrupt snapshot changed the Map (-before +after):\n%s", diff)
					}
					require.Nil(t, plain.restored, "the plain source received bytes from a corrupt snapshot")
				})
			}
		})
	}
}

func flipAt(raw []byte, at int) []byte {
	b := bytes.Clone(raw)
	b[at] ^= 0x10
	return b
}

func TestMapStageCommitsAtomically(t *testing.T) {
	const n = 200
	fill := func(m *Map[int, string], gen string) {
		for i := range n {
			m.Store(i, gen)
		}
	}
	src, err := NewMap(MapOptions[int, string]{})
	require.NoError(t, err)
	fill(src, "new")
	var buf bytes.Buffer
	_, err = src.View().WriteTo(&buf)
	require.NoError(t, err)

	dst, err := NewMap(MapOptions[int, string]{})
	require.NoError(t, err)
	fill(dst, "old")
	before := dumpMap(dst.Range)
	commit, err := dst.Stage(context.Background(), &buf)
	require.NoError(t, err)
	if diff := cmp.Diff(before, dumpMap(dst.Range)); diff != "" {
		t.Fatalf("Stage changed the Map before commit (-before +after):\n%s", diff)
	}

	// A reader takes views while commit runs: each view holds one
	// generation, whole.
	stop := make(chan struct{})
	seen := make(chan error, 1)
	go func() {
		var err error
		defer func() { seen <- err }()
		for {
			v := dst.View()
			gens := map[string]int{}
			v.Range(func(_ int, g string) bool { gens[g]++; return true })
			if len(gens) != 1 || v.Len() != n {
				err = fmt.Errorf("a view holds %v (%d entries): not one whole generation", gens, v.Len())
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	commit()
	close(stop)
	require.NoError(t, <-seen)
	if diff := cmp.Diff(dumpMap(src.Range), dumpMap(dst.Range)); diff != "" {
		t.Fatalf("after commit (-want +got):\n%s", diff)
	}
}

func TestShardedMapStageCommits(t *testing.T) {
	src, err := NewShardedMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	for i := range uint64(500) {
		src.Store(i, testValue(i, 40))
	}
	var buf bytes.Buffer
	_, err = src.View().WriteTo(&buf)
	require.NoError(t, err)
	dst, err := NewShardedMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	dst.Store(9999, []byte("old"))
	before := dumpMap(dst.Range)
	commit, err := dst.Stage(context.Background(), &buf)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(before, dumpMap(dst.Range)), "Stage changed the map before commit")
	commit()
	require.Empty(t, cmp.Diff(dumpMap(src.Range), dumpMap(dst.Range)))
	_, ok := dst.Load(9999)
	require.False(t, ok)

	// A malformed stream is refused and stages nothing.
	_, err = dst.Stage(context.Background(), bytes.NewReader([]byte("UMAP\x01\x05")))
	require.ErrorContains(t, err, "entry 0 of 5")
}

// failingStager is a plain source that also stages, and fails to.
type failingStager struct{ faultySource }

func (s *failingStager) Stage(ctx context.Context, r io.Reader) (func(), error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return nil, errors.New("no room")
}

func TestRestoreMixesStagersAndPlainSources(t *testing.T) {
	ctx := context.Background()
	routes, err := NewMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	fillMap(t, routes, 400, 64)
	conns, err := NewShardedMap(MapOptions[string, int64]{})
	require.NoError(t, err)
	for i := range 300 {
		conns.Store(fmt.Sprintf("conn-%d", i), int64(i))
	}
	plain := &faultySource{data: testValue(3, 9000)}
	counts, err := NewMap(MapOptions[string, int64]{})
	require.NoError(t, err)
	counts.Store("packets", 42)
	store := NewMemStore()
	e, err := New(store, map[string]Source{"a-plain": plain, "conns": conns, "counts": counts, "routes": routes},
		Options{AppVersion: "2", ChunkBytes: 1024})
	require.NoError(t, err)
	m, err := e.Snapshot(ctx)
	require.NoError(t, err)

	type fresh struct {
		plain  *faultySource
		routes *Map[uint64, []byte]
		conns  *ShardedMap[string, int64]
		counts *Map[string, int64]
	}
	newFresh := func(t *testing.T) (fresh, map[string]Source) {
		var f fresh
		f.plain = &faultySource{}
		f.routes, err = NewMap(MapOptions[uint64, []byte]{})
		require.NoError(t, err)
		f.conns, err = NewShardedMap(MapOptions[string, int64]{})
		require.NoError(t, err)
		f.counts, err = NewMap(MapOptions[string, int64]{})
		require.NoError(t, err)
		f.counts.Store("stale", 1)
		return f, map[string]Source{"a-plain": f.plain, "conns": f.conns, "counts": f.counts, "routes": f.routes}
	}
	check := func(t *testing.T, f fresh) {
		t.Helper()
		require.Equal(t, plain.data, f.plain.restored)
		require.Empty(t, cmp.Diff(dumpMap(routes.Range), dumpMap(f.routes.Range)), "routes")
		require.Empty(t, cmp.Diff(dumpMap(conns.Range), dumpMap(f.conns.Range)), "conns")
		require.Empty(t, cmp.Diff(dumpMap(counts.Range), dumpMap(f.counts.Range)), "counts")
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"read once", Options{AppVersion: "2"}},
		{"read twice", Options{AppVersion: "2", RestoreMemory: -1}},
		// Another app version: the staging is dropped and every source is
		// restored through Restore from a second read.
		{"upgrade", Options{AppVersion: "3", Upgrade: func(_ context.Context, _ Manifest, _ string, r io.Reader) (io.Reader, error) { return r, nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, sources := newFresh(t)
			e2, err := New(store, sources, tc.opts)
			require.NoError(t, err)
			require.NoError(t, e2.Restore(ctx, Manifest{ID: m.ID}))
			check(t, f)
		})
	}
	t.Run("a stager that fails changes nothing", func(t *testing.T) {
		f, sources := newFresh(t)
		bad := &failingStager{}
		sources["counts"] = bad
		before := dumpMap(f.routes.Range)
		e2, err := New(store, sources, Options{AppVersion: "2"})
		require.NoError(t, err)
		err = e2.Restore(ctx, Manifest{ID: m.ID})
		require.ErrorContains(t, err, `source "counts": stage: no room`)
		require.Empty(t, cmp.Diff(before, dumpMap(f.routes.Range)), "routes changed although a stager failed")
		require.Nil(t, f.plain.restored, "the plain source was restored although a stager failed")
		require.Nil(t, bad.restored)
	})
}

// FuzzStagedRestore restores arbitrary bytes into a Map (a Stager) beside a
// plain source: a refused snapshot must leave both unchanged.
func FuzzStagedRestore(f *testing.F) {
	for _, c := range []Compression{CompressionS2, CompressionNone} {
		_, _, raw := stagedSnapshot(f, c)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		routes, err := NewMap(MapOptions[uint64, []byte]{})
		require.NoError(t, err)
		routes.Store(1, []byte("before"))
		before := dumpMap(routes.Range)
		plain := &faultySource{}
		store := NewMemStore()
		e, err := New(store, map[string]Source{"routes": routes, "z": plain}, Options{AppVersion: "1"})
		require.NoError(t, err)
		// Whatever ID the bytes claim, store them under a valid one; a
		// mismatch is refused like any corruption.
		id := "fuzz"
		if m, err := Verify(context.Background(), bytes.NewReader(in), "fuzz", nil); err == nil {
			id = m.ID
		}
		if ValidID(id) != nil {
			return
		}
		store.Put(id, in)
		if err := e.Restore(context.Background(), Manifest{ID: id}); err != nil {
			if diff := cmp.Diff(before, dumpMap(routes.Range)); diff != "" {
				t.Fatalf("a refused snapshot (%v) changed the Map (-before +after):\n%s", err, diff)
			}
			require.Nil(t, plain.restored, "a refused snapshot (%v) reached the plain source", err)
		}
	})
}

// A staged restore reads a Map's []byte values straight from the verified
// chunks, which the map then owns. Values of every size, some spanning
// chunks, come back exact; appending to one leaves its neighbours alone;
// and a second restore through the same engine, which reuses the stream's
// buffers, does not change the values the first one gave out.
func TestStagedRestoreValuesOwnTheirMemory(t *testing.T) {
	for _, tc := range []struct {
		c   Compression
		key []byte
	}{{CompressionS2, nil}, {CompressionNone, nil}, {CompressionZstd, nil}, {CompressionS2, testKey}, {CompressionNone, testKey}} {
		c := tc.c
		t.Run(fmt.Sprintf("%s/encrypted=%v", c, tc.key != nil), func(t *testing.T) {
			ctx := context.Background()
			src, err := NewMap(MapOptions[uint64, []byte]{})
			require.NoError(t, err)
			for k := range uint64(400) {
				src.Store(k, bytes.Repeat([]byte{byte(k), byte(k >> 8)}, int(k*7%2600))) // 0 to 5 KiB: many span a 1 KiB chunk
			}
			want := dumpMap(src.Range)
			store := NewMemStore()
			e, err := New(store, map[string]Source{"m": src}, Options{AppVersion: "1", ChunkBytes: 1024, Compression: c, Key: tc.key})
			require.NoError(t, err)
			first, err := e.Snapshot(ctx)
			require.NoError(t, err)
			for k := range uint64(400) {
				src.Store(k, []byte(fmt.Sprintf("changed %d", k)))
			}
			second, err := e.Snapshot(ctx)
			require.NoError(t, err)

			dst, err := NewMap(MapOptions[uint64, []byte]{})
			require.NoError(t, err)
			re, err := New(store, map[string]Source{"m": dst}, Options{AppVersion: "1", ChunkBytes: 1024, Compression: c, Key: tc.key})
			require.NoError(t, err)
			require.NoError(t, re.Restore(ctx, first))
			got := dumpMap(dst.Range)
			require.True(t, maps.EqualFunc(want, got, bytes.Equal), "restored map differs from the snapshot's")

			spill := bytes.Repeat([]byte("x"), 64) // longer than an entry's key and lengths
			for _, v := range got {
				_ = append(v, spill...)
			}
			require.True(t, maps.EqualFunc(want, dumpMap(dst.Range), bytes.Equal), "appending to a value wrote into the next")

			require.NoError(t, re.Restore(ctx, second))
			require.Equal(t, "changed 7", string(mustLoad(t, dst, 7)))
			require.True(t, maps.EqualFunc(want, got, bytes.Equal), "the second restore changed values the first gave out")
		})
	}
}

func mustLoad[K comparable, V any](t *testing.T, m *Map[K, V], k K) V {
	t.Helper()
	v, ok := m.Load(k)
	require.True(t, ok, "key %v missing", k)
	return v
}
