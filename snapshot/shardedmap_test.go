package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShardedMapMatchesGoMap(t *testing.T) {
	hashes := map[string]func(uint64) uint64{
		"default": nil,
		"collide": func(k uint64) uint64 { return k % 7 },
	}
	for hname, h := range hashes {
		for _, shards := range []int{1, 4, 1024} {
			t.Run(fmt.Sprintf("%s/shards=%d", hname, shards), func(t *testing.T) {
				m, err := NewShardedMap(MapOptions[uint64, int]{Hash: h, Shards: shards})
				require.NoError(t, err)
				checkAgainstGoMap(t, m, m.View, 3, 1500)
			})
		}
	}
}

func TestShardedMapConcurrentWritersAndViews(t *testing.T) {
	m, err := NewShardedMap(MapOptions[uint64, uint64]{Shards: 16})
	require.NoError(t, err)
	const writers, perWriter = 4, 3000
	hammerViews(t, writers, perWriter, m.Store, func(k uint64) { m.Delete(k) }, m.View)
	require.Equal(t, writers*perWriter, m.Len())
}

func TestShardedMapPauseBlocksWritersNotReaders(t *testing.T) {
	ctx := context.Background()
	m, err := NewShardedMap(MapOptions[int, int]{})
	require.NoError(t, err)
	m.Store(1, 1)
	require.NoError(t, m.Pause(ctx))
	wrote := make(chan struct{})
	go func() {
		m.Store(1, 2)
		close(wrote)
	}()
	v, ok := m.Load(1)
	require.True(t, ok)
	require.Equal(t, 1, v)
	require.True(t, m.frozen.Load(), "writers can enter during a pause")
	// A capture inside the pause does not wait for the lock it already has.
	captured, err := m.Capture(ctx)
	require.NoError(t, err)
	view := captured.(*ShardedMapView[int, int])
	require.Equal(t, 1, view.Len())
	inView, _ := view.Load(1)
	require.Equal(t, 1, inView, "a write got through the pause")
	m.Resume()
	<-wrote
	v, _ = m.Load(1)
	require.Equal(t, 2, v)
	got, _ := view.Load(1)
	require.Equal(t, 1, got, "the view changed")

	cctx, cancel := context.WithCancel(ctx)
	require.NoError(t, m.Pause(ctx))
	cancel()
	require.ErrorIs(t, m.Pause(cctx), context.Canceled)
	m.Resume()
	m.Store(3, 3) // the abandoned Pause handed the lock back
	require.Equal(t, 2, m.Len())
}

// TestMapFormatsAreInterchangeable restores a Map's view into a ShardedMap
// and back.
func TestMapFormatsAreInterchangeable(t *testing.T) {
	ctx := context.Background()
	a := newTestMap(t, MapOptions[string, []byte]{})
	for i := range 3000 {
		a.Store(fmt.Sprint("k", i), bytes.Repeat([]byte{byte(i)}, i%50))
	}
	var buf bytes.Buffer
	_, err := a.View().WriteTo(&buf)
	require.NoError(t, err)
	b, err := NewShardedMap(MapOptions[string, []byte]{Shards: 64})
	require.NoError(t, err)
	b.Store("stale", nil)
	require.NoError(t, b.Restore(ctx, &buf))
	require.Equal(t, mapContents[string, []byte](a), mapContents[string, []byte](b))

	buf.Reset()
	_, err = b.View().WriteTo(&buf)
	require.NoError(t, err)
	c := newTestMap(t, MapOptions[string, []byte]{})
	require.NoError(t, c.Restore(ctx, &buf))
	require.Equal(t, mapContents[string, []byte](a), mapContents[string, []byte](c))

	// A bad stream leaves the sharded map as it was.
	require.ErrorContains(t, b.Restore(ctx, bytes.NewReader([]byte(mapMagic+"\x02\x01a"))), "entry 0 of 2")
	require.Equal(t, 3000, b.Len())
	dup := append([]byte(mapMagic), 2, 1, 'x', 0, 1, 'x', 0)
	require.ErrorContains(t, b.Restore(ctx, bytes.NewReader(dup)), "duplicate key x")
}

func TestNewShardedMapValidates(t *testing.T) {
	for _, n := range []int{-1, 3, 1000, 1 << 21} {
		_, err := NewShardedMap(MapOptions[int, int]{Shards: n})
		require.ErrorContains(t, err, "must be a power of two", "Shards %d", n)
	}
	_, err := NewShardedMap(MapOptions[int, int]{Keys: Codec[int]{Append: IntCodec().Append}})
	require.ErrorContains(t, err, "NewShardedMap: Keys codec needs both")
}

// TestShardedMapInACut takes consistent cuts of a Map and a ShardedMap
// written in lockstep, as TestCutIsConsistent does for two Maps.
func TestShardedMapInACut(t *testing.T) {
	ctx := context.Background()
	a := newTestMap(t, MapOptions[string, int64]{})
	b, err := NewShardedMap(MapOptions[string, int64]{Shards: 8})
	require.NoError(t, err)
	store := NewMemStore()
	e, err := New(store, map[string]Source{"a": a, "b": b}, Options{})
	require.NoError(t, err)
	host := make(chan struct{}, 1)
	e.opts.Pause = func(context.Context) (func(), error) {
		host <- struct{}{}
		return func() { <-host }, nil
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			host <- struct{}{}
			a.Store("step", i)
			b.Store("step", i)
			<-host
		}
	}()
	for range 20 {
		m, err := e.Snapshot(ctx)
		require.NoError(t, err)
		a2 := newTestMap(t, MapOptions[string, int64]{})
		b2, _ := NewShardedMap(MapOptions[string, int64]{})
		e2, err := New(store, map[string]Source{"a": a2, "b": b2}, Options{})
		require.NoError(t, err)
		require.NoError(t, e2.Restore(ctx, m))
		va, _ := a2.Load("step")
		vb, _ := b2.Load("step")
		require.Equal(t, va, vb, "cut mixes two steps")
	}
	close(stop)
	<-done
}

// A capture taken while writers run is a consistent cut: each writer
// stores round r under its key A and then under its key B (another shard,
// or another source of the same cut), so a view that holds B = r without
// A ≥ r would show a write without one that happened before it.
func TestShardedMapCaptureIsAConsistentCut(t *testing.T) {
	ctx := context.Background()
	m, err := NewShardedMap(MapOptions[uint64, uint64]{})
	require.NoError(t, err)
	other := newTestMap(t, MapOptions[uint64, uint64]{})
	eng, err := New(NewMemStore(), map[string]Source{"a": m, "b": other}, Options{})
	require.NoError(t, err)
	const writers, rounds = 8, 5000
	// Writer w's keys: A = 2w and B = 2w+1 in m, and A = 2w in m, B = 2w in
	// other across the two sources.
	var wg sync.WaitGroup
	for w := range uint64(writers) {
		wg.Go(func() {
			for r := uint64(1); r <= rounds; r++ {
				m.Store(2*w, r)
				m.Store(2*w+1, r)
				other.Store(2*w, r)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	check := func(a *ShardedMapView[uint64, uint64], b *MapView[uint64, uint64]) {
		for w := range uint64(writers) {
			ra, _ := a.Load(2 * w)
			rb, _ := a.Load(2*w + 1)
			ro, _ := b.Load(2 * w)
			require.LessOrEqual(t, rb, ra, "writer %d: B = %d seen with A = %d", w, rb, ra)
			require.LessOrEqual(t, ro, rb, "writer %d: other's B = %d seen with B = %d", w, ro, rb)
		}
	}
	for cuts := 0; ; cuts++ {
		select {
		case <-done:
			require.Positive(t, cuts)
			return
		default:
		}
		views, _, err := eng.cut(ctx)
		require.NoError(t, err)
		a := views[0].(*ShardedMapView[uint64, uint64])
		b := views[1].(*MapView[uint64, uint64])
		check(a, b)
		direct := m.View() // a capture outside any cut, consistent for m alone
		for w := range uint64(writers) {
			ra, _ := direct.Load(2 * w)
			rb, _ := direct.Load(2*w + 1)
			require.LessOrEqual(t, rb, ra, "View: writer %d", w)
		}
		direct.Close()
		closeViews(views)
	}
}
