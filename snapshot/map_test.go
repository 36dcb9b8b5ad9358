package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func newTestMap[K comparable, V any](t testing.TB, opts MapOptions[K, V]) *Map[K, V] {
	t.Helper()
	m, err := NewMap(opts)
	require.NoError(t, err)
	return m
}

func mapContents[K comparable, V any](r interface{ Range(func(K, V) bool) }) map[K]V {
	out := map[K]V{}
	r.Range(func(k K, v V) bool { out[k] = v; return true })
	return out
}

// TestMapMatchesGoMap runs random operations on a Map and a Go map side by
// side; a bad hash forces deep tries and full 64-bit collisions.
func TestMapMatchesGoMap(t *testing.T) {
	hashes := map[string]func(uint64) uint64{
		"default":   nil,
		"collide":   func(k uint64) uint64 { return k % 7 },          // many full collisions
		"shallow":   func(k uint64) uint64 { return k & 0x3ff },      // collisions after 2 levels
		"identity":  func(k uint64) uint64 { return k },              // deep, ordered
		"highbits":  func(k uint64) uint64 { return k << 50 },        // differ only in the last levels
		"lastlevel": func(k uint64) uint64 { return (k % 40) << 58 }, // collide past bit 64
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			m := newTestMap(t, MapOptions[uint64, int]{Hash: h})
			checkAgainstGoMap(t, m, m.View, 1, 2500)
		})
	}
}

// testMap is what Map and ShardedMap share, for checkAgainstGoMap.
type testMap interface {
	Store(k uint64, v int)
	Delete(k uint64) bool
	Update(k uint64, fn func(old int, ok bool) (int, bool))
	Load(k uint64) (int, bool)
	Len() int
	Range(fn func(uint64, int) bool)
}

// testView is what MapView and ShardedMapView share.
type testView interface {
	Len() int
	Load(k uint64) (int, bool)
	Range(fn func(uint64, int) bool)
}

// checkAgainstGoMap runs 20 000 random operations (seeded by seed) on m and
// on a Go map side by side, takes a view every viewEvery operations, and
// checks that m ends equal to the Go map and that every view still shows
// exactly what was there when it was taken.
func checkAgainstGoMap[V testView](t *testing.T, m testMap, view func() V, seed uint64, viewEvery int) {
	t.Helper()
	want := map[uint64]int{}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var views []V
	var wantViews []map[uint64]int
	for i := range 20000 {
		k := rng.Uint64N(600)
		switch op := rng.IntN(10); {
		case op < 5:
			m.Store(k, i)
			want[k] = i
		case op < 8:
			_, had := want[k]
			require.Equal(t, had, m.Delete(k), "Delete(%d)", k)
			delete(want, k)
		case op < 9:
			m.Update(k, func(old int, ok bool) (int, bool) {
				if ok && old%2 == 0 {
					delete(want, k)
					return 0, false
				}
				want[k] = old + 1
				return old + 1, true
			})
		default:
			v, ok := m.Load(k)
			wv, wok := want[k]
			require.Equal(t, wok, ok, "Load(%d) presence", k)
			require.Equal(t, wv, v, "Load(%d) value", k)
		}
		if i%viewEvery == 0 {
			views = append(views, view())
			wantViews = append(wantViews, cloneMap(want))
		}
	}
	require.Equal(t, len(want), m.Len())
	if diff := cmp.Diff(want, mapContents[uint64, int](m)); diff != "" {
		t.Fatalf("map differs from Go map (-want +got):\n%s", diff)
	}
	for k, v := range want {
		got, ok := m.Load(k)
		require.True(t, ok, "key %d", k)
		require.Equal(t, v, got, "key %d", k)
	}
	for i, v := range views {
		require.Equal(t, len(wantViews[i]), v.Len(), "view %d size", i)
		if diff := cmp.Diff(wantViews[i], mapContents[uint64, int](v)); diff != "" {
			t.Fatalf("view %d changed after later writes (-want +got):\n%s", i, diff)
		}
		for k, val := range wantViews[i] {
			got, ok := v.Load(k)
			require.True(t, ok, "view %d key %d", i, k)
			require.Equal(t, val, got, "view %d key %d", i, k)
		}
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestMapViewRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := newTestMap(t, MapOptions[string, []byte]{})
	want := map[string][]byte{}
	for i := range 5000 {
		k := fmt.Sprintf("route-%d", i)
		v := bytes.Repeat([]byte{byte(i)}, i%300)
		src.Store(k, v)
		want[k] = v
	}
	src.Store("", []byte{}) // empty key and value survive
	want[""] = []byte{}
	view, err := src.Capture(ctx)
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := view.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)

	dst := newTestMap(t, MapOptions[string, []byte]{})
	dst.Store("stale", []byte("gone after restore"))
	require.NoError(t, dst.Restore(ctx, &buf))
	require.Equal(t, len(want), dst.Len())
	require.Equal(t, want, mapContents[string, []byte](dst), "restored map differs")
	// The restored map is an ordinary map: it can be written again.
	dst.Store("new", []byte("x"))
	require.Equal(t, len(want)+1, dst.Len())
}

func TestMapRestoreRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	src := newTestMap(t, MapOptions[uint64, string]{})
	for i := range uint64(10) {
		src.Store(i, strings.Repeat("v", int(i)))
	}
	var good bytes.Buffer
	_, err := src.View().WriteTo(&good)
	require.NoError(t, err)
	dup := append([]byte(mapMagic), 2, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"empty":         {nil, "header"},
		"bad magic":     {[]byte("XMAP\x01\x00"), "header"},
		"no count":      {[]byte(mapMagic), "entry count"},
		"truncated":     {good.Bytes()[:good.Len()-3], "entry 9 of 10"},
		"trailing":      {append(bytes.Clone(good.Bytes()), 0), "data after the 10 entries"},
		"short key":     {append([]byte(mapMagic), 1, 3, 1, 2, 3, 0), "entry 0 of 1: key: uint64 needs 8 bytes"},
		"huge field":    {append([]byte(mapMagic), 1, 0xff, 0xff, 0xff, 0xff, 0x0f), "key length 4294967295 exceeds"},
		"duplicate key": {dup, "duplicate key 1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dst := newTestMap(t, MapOptions[uint64, string]{})
			dst.Store(42, "keep")
			err := dst.Restore(ctx, bytes.NewReader(c.in))
			require.ErrorContains(t, err, c.want)
			v, ok := dst.Load(42)
			require.True(t, ok && v == "keep" && dst.Len() == 1, "a failed restore changed the map")
		})
	}
}

// TestMapPauseBlocksWritersNotReaders checks the cut's promise: while paused
// a writer waits, a reader does not, and the writer goes on after Resume.
func TestMapPauseBlocksWritersNotReaders(t *testing.T) {
	ctx := context.Background()
	m := newTestMap(t, MapOptions[int, int]{})
	m.Store(1, 1)
	require.NoError(t, m.Pause(ctx))
	wrote := make(chan struct{})
	go func() {
		m.Store(1, 2)
		close(wrote)
	}()
	// Readers are served while paused.
	v, ok := m.Load(1)
	require.True(t, ok)
	require.Equal(t, 1, v)
	// The writer cannot have finished: the lock is held until Resume.
	select {
	case <-wrote:
		t.Fatal("writer finished while the map was paused")
	default:
	}
	require.False(t, m.mu.TryLock(), "writer lock is free during a pause")
	m.Resume()
	<-wrote
	v, _ = m.Load(1)
	require.Equal(t, 2, v)
}

func TestMapPauseHonoursContext(t *testing.T) {
	m := newTestMap(t, MapOptions[int, int]{})
	require.NoError(t, m.Pause(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.Pause(ctx)
	require.ErrorIs(t, err, context.Canceled)
	m.Resume()
	// The abandoned Pause must not keep the lock: a writer gets through.
	done := make(chan struct{})
	go func() { m.Store(1, 1); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer still blocked 10s after the cancelled Pause")
	}
}

func TestMapConcurrentReadersAndWriters(t *testing.T) {
	m := newTestMap(t, MapOptions[uint64, uint64]{})
	const writers, perWriter = 4, 2000
	hammerViews(t, writers, perWriter, m.Store, func(k uint64) { m.Delete(k) }, m.View)
	require.Equal(t, writers*perWriter, m.Len())
}

// viewOf is what hammerViews reads: a Map's or a ShardedMap's view.
type viewOf interface {
	Range(func(k, v uint64) bool)
	Len() int
}

// hammerViews runs writers that store k → 3k (every 100th key deleted and
// stored again) while a reader keeps taking views, and fails if a view
// ever holds a wrong value or ranges over other than its Len entries.
func hammerViews[V viewOf](t *testing.T, writers, perWriter uint64, store func(k, v uint64), del func(k uint64), view func() V) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				k := w*perWriter + i
				store(k, k*3)
				if i%100 == 0 {
					del(k)
					store(k, k*3)
				}
			}
		})
	}
	stop := make(chan struct{})
	var viewErr error
	var vg sync.WaitGroup
	vg.Go(func() {
		for viewErr == nil {
			select {
			case <-stop:
				return
			default:
			}
			v := view()
			n := 0
			v.Range(func(k, val uint64) bool {
				n++
				if val != k*3 {
					viewErr = fmt.Errorf("key %d has value %d", k, val)
					return false
				}
				return true
			})
			if n != v.Len() && viewErr == nil {
				viewErr = fmt.Errorf("view ranges over %d entries but says %d", n, v.Len())
			}
		}
	})
	wg.Wait()
	close(stop)
	vg.Wait()
	require.NoError(t, viewErr)
}

func TestNewMapValidatesCodecs(t *testing.T) {
	_, err := NewMap(MapOptions[int, int]{Keys: Codec[int]{Append: IntCodec().Append}})
	require.ErrorContains(t, err, "Keys codec needs both")
	_, err = NewMap(MapOptions[int, int]{Values: Codec[int]{Decode: IntCodec().Decode}})
	require.ErrorContains(t, err, "Values codec needs both")
}

type point struct{ X, Y int }

func TestMapGobDefaultCodec(t *testing.T) {
	ctx := context.Background()
	src := newTestMap(t, MapOptions[point, string]{})
	src.Store(point{1, 2}, "a")
	src.Store(point{3, 4}, "b")
	var buf bytes.Buffer
	_, err := src.View().WriteTo(&buf)
	require.NoError(t, err)
	dst := newTestMap(t, MapOptions[point, string]{})
	require.NoError(t, dst.Restore(ctx, &buf))
	require.Equal(t, map[point]string{{1, 2}: "a", {3, 4}: "b"}, mapContents[point, string](dst))
}

func TestMapRestoreReportsReaderError(t *testing.T) {
	m := newTestMap(t, MapOptions[int, int]{})
	boom := errors.New("boom")
	err := m.Restore(context.Background(), errReader{boom})
	require.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzMapRestore(f *testing.F) {
	src, _ := NewMap(MapOptions[string, []byte]{})
	src.Store("a", []byte("1"))
	src.Store("bb", nil)
	var buf bytes.Buffer
	src.View().WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(mapMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, _ := NewMap(MapOptions[string, []byte]{})
		if err := m.Restore(context.Background(), bytes.NewReader(in)); err != nil {
			if m.Len() != 0 {
				t.Fatalf("failed restore left %d entries", m.Len())
			}
			return
		}
		// What restored must write back to the same bytes' meaning.
		var out bytes.Buffer
		if _, err := m.View().WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		m2, _ := NewMap(MapOptions[string, []byte]{})
		if err := m2.Restore(context.Background(), &out); err != nil {
			t.Fatalf("re-encoded map does not restore: %v", err)
		}
		if m2.Len() != m.Len() {
			t.Fatalf("round trip changed size %d -> %d", m.Len(), m2.Len())
		}
	})
}

// buildHAMT builds the very trie a sequence of inserts builds, and refuses
// a key given twice.
func TestBuildHAMTMatchesInserts(t *testing.T) {
	hash := defaultHash[uint64]()
	for _, n := range []int{0, 1, 2, 31, 33, 1000, 20000} {
		var entries []hamtEntry[uint64, int]
		inserted := &hamtNode[uint64, int]{}
		for i := range n {
			k := mix64(uint64(i))
			e := hamtEntry[uint64, int]{hash: hash(k), key: k, val: i}
			entries = append(entries, e)
			inserted, _ = inserted.set(0, e, true)
		}
		built, dup := buildHAMT(entries)
		require.Nil(t, dup)
		require.Equal(t, dumpHAMT(inserted), dumpHAMT(built), "n=%d", n)
		if n > 0 {
			again := entries[n/2] // (built reordered entries)
			entries = append(entries, again)
			_, dup = buildHAMT(entries)
			require.NotNil(t, dup, "n=%d", n)
			require.Equal(t, again.key, dup.key)
		}
	}
}

// Keys whose 64-bit hashes collide end in a collision list.
func TestBuildHAMTCollisions(t *testing.T) {
	entries := []hamtEntry[string, int]{{7, "a", 1}, {7, "b", 2}, {9, "c", 3}, {7, "d", 4}}
	n, dup := buildHAMT(entries)
	require.Nil(t, dup)
	for _, e := range []hamtEntry[string, int]{{7, "a", 1}, {7, "b", 2}, {9, "c", 3}, {7, "d", 4}} {
		v, ok := n.get(e.hash, e.key)
		require.True(t, ok, e.key)
		require.Equal(t, e.val, v)
	}
	_, dup = buildHAMT(append(entries, hamtEntry[string, int]{7, "b", 5}))
	require.NotNil(t, dup)
	require.Equal(t, "b", dup.key)
}

// dumpHAMT writes a trie's shape and contents (nil and empty slices alike).
func dumpHAMT[K comparable, V any](n *hamtNode[K, V]) string {
	var b strings.Builder
	fmt.Fprintf(&b, "(%x %x", n.dataMap, n.nodeMap)
	for _, e := range n.entries {
		fmt.Fprintf(&b, " %x:%v=%v", e.hash, e.key, e.val)
	}
	for _, c := range n.children {
		b.WriteString(" " + dumpHAMT(c))
	}
	return b.String() + ")"
}
