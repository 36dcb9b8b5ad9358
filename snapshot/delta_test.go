package snapshot

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// churn runs writers and deleters on m until stop is closed: writer w
// stores keys w, w+4, ... below keys with ever-new values; deleter removes
// every third key it visits. It returns a wait function.
func churn(m *ShardedMap[uint64, uint64], keys uint64, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	var gen atomic.Uint64
	for w := range uint64(3) {
		wg.Go(func() {
			for k := w; ; k = (k + 3) % keys {
				select {
				case <-stop:
					return
				default:
				}
				m.Store(k, gen.Add(1))
			}
		})
	}
	wg.Go(func() {
		for k := uint64(0); ; k = (k + 7) % keys {
			select {
			case <-stop:
				return
			default:
			}
			m.Delete(k)
		}
	})
	return wg.Wait
}

// A delta from a bulk copy's view to a later view, applied to the bulk
// copy (in another map, with its own hash seed), gives exactly the later
// view, round after round, with writers and deleters running through
// every capture.
func TestShardedMapDeltaMatchesFullCapture(t *testing.T) {
	ctx := context.Background()
	for _, shards := range []int{1, 16, 1024} {
		src, err := NewShardedMap(MapOptions[uint64, uint64]{Shards: shards})
		require.NoError(t, err)
		const keys = 5000
		for k := range uint64(keys) {
			src.Store(k, k)
		}
		stop := make(chan struct{})
		wait := churn(src, keys, stop)

		base := src.View()
		var bulk bytes.Buffer
		_, err = base.WriteTo(&bulk)
		require.NoError(t, err)
		dst, err := NewShardedMap(MapOptions[uint64, uint64]{Shards: 64})
		require.NoError(t, err)
		require.NoError(t, dst.Restore(ctx, &bulk))
		for round := range 5 {
			next := src.View()
			var delta bytes.Buffer
			n, err := next.WriteDeltaTo(&delta, base)
			require.NoError(t, err)
			require.EqualValues(t, delta.Len(), n)
			require.NoError(t, dst.ApplyDelta(ctx, &delta))
			if diff := cmp.Diff(mapContents[uint64, uint64](next), mapContents[uint64, uint64](dst)); diff != "" {
				t.Fatalf("shards=%d round %d: bulk copy + delta differs from the full capture (-want +got):\n%s", shards, round, diff)
			}
			require.NoError(t, base.Close())
			base = next
		}
		close(stop)
		wait()
		require.NoError(t, base.Close())
	}
}

// A delta holds the keys written between its two views, once each, and
// nothing of the unchanged state.
func TestShardedMapDeltaHoldsOnlyTheChange(t *testing.T) {
	m, err := NewShardedMap(MapOptions[uint64, uint64]{})
	require.NoError(t, err)
	for k := range uint64(100_000) {
		m.Store(k, k)
	}
	base := m.View()
	defer base.Close()
	for k := range uint64(10) {
		m.Store(k, 1000+k)
		m.Store(k, 2000+k) // twice: one record
	}
	m.Delete(50)
	m.Store(200_000, 1) // new, then gone: a delete record
	m.Delete(200_000)
	next := m.View()
	defer next.Close()
	var delta bytes.Buffer
	_, err = next.WriteDeltaTo(&delta, base)
	require.NoError(t, err)
	ops, err := readDelta(context.Background(), &delta, m.entry)
	require.NoError(t, err)
	got := map[uint64]deltaOp[uint64, uint64]{}
	for _, op := range ops {
		got[op.key] = op
	}
	want := map[uint64]deltaOp[uint64, uint64]{50: {key: 50, del: true}, 200_000: {key: 200_000, del: true}}
	for k := range uint64(10) {
		want[k] = deltaOp[uint64, uint64]{key: k, val: 2000 + k}
	}
	require.Empty(t, cmp.Diff(want, got, cmp.AllowUnexported(deltaOp[uint64, uint64]{})))
}

func TestShardedMapDeltaRefusesBadBase(t *testing.T) {
	ctx := context.Background()
	a, _ := NewShardedMap(MapOptions[uint64, uint64]{})
	b, _ := NewShardedMap(MapOptions[uint64, uint64]{})
	other, _ := NewMap(MapOptions[uint64, uint64]{})
	a.Store(1, 1)
	early := a.View()
	late := a.View()
	for name, tc := range map[string]struct {
		v, base View
	}{
		"another map":      {late, b.View()},
		"another type":     {late, other.View()},
		"later base":       {early, late},
		"nil base":         {late, nil},
		"closed base":      {late, func() View { v := a.View(); v.Close(); return v }()},
		"base of restored": {nil, nil},
	} {
		if name == "base of restored" {
			var full bytes.Buffer
			_, err := early.WriteTo(&full)
			require.NoError(t, err)
			require.NoError(t, a.Restore(ctx, &full))
			tc.v, tc.base = a.View(), late
		}
		var out bytes.Buffer
		_, err := tc.v.(*ShardedMapView[uint64, uint64]).WriteDeltaTo(&out, tc.base)
		require.ErrorIs(t, err, ErrDeltaBase, name)
		require.Zero(t, out.Len(), name)
	}
}

// validDelta is a delta setting keys 1..3 and deleting key 7.
func validDelta(t testing.TB) (*ShardedMap[uint64, uint64], []byte) {
	m, err := NewShardedMap(MapOptions[uint64, uint64]{})
	require.NoError(t, err)
	m.Store(7, 7)
	base := m.View()
	for k := range uint64(3) {
		m.Store(k+1, 10*(k+1))
	}
	m.Delete(7)
	next := m.View()
	var b bytes.Buffer
	_, err = next.WriteDeltaTo(&b, base)
	require.NoError(t, err)
	return m, b.Bytes()
}

// Every truncation and every flipped byte of a delta is refused with an
// error, and the map it was applied to is unchanged.
func TestApplyDeltaRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	_, delta := validDelta(t)
	dst, _ := NewShardedMap(MapOptions[uint64, uint64]{})
	dst.Store(7, 7)
	want := mapContents[uint64, uint64](dst)
	for i := range len(delta) {
		err := dst.ApplyDelta(ctx, bytes.NewReader(delta[:i]))
		require.Error(t, err, "truncated at %d", i)
		require.Contains(t, err.Error(), "snapshot: apply delta")
		bad := bytes.Clone(delta)
		bad[i] ^= 0x40
		require.Error(t, dst.ApplyDelta(ctx, bytes.NewReader(bad)), "byte %d flipped", i)
		require.Empty(t, cmp.Diff(want, mapContents[uint64, uint64](dst)), "byte %d", i)
	}
	err := dst.ApplyDelta(ctx, bytes.NewReader(append(bytes.Clone(delta), 0)))
	require.ErrorIs(t, err, ErrCorrupt)
	future := bytes.Clone(delta)
	future[4] = 2
	require.ErrorIs(t, dst.ApplyDelta(ctx, bytes.NewReader(future)), ErrFormatVersion)
	require.NoError(t, dst.ApplyDelta(ctx, bytes.NewReader(delta)))
	require.Equal(t, map[uint64]uint64{1: 10, 2: 20, 3: 30}, mapContents[uint64, uint64](dst))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.True(t, errors.Is(dst.ApplyDelta(cancelled, bytes.NewReader(delta)), context.Canceled))
}

// FuzzApplyDelta: the delta decoder never panics, and a delta it refuses
// leaves the map unchanged.
func FuzzApplyDelta(f *testing.F) {
	_, delta := validDelta(f)
	f.Add(delta)
	f.Add([]byte(deltaMagic + "E\x00\x00\x00\x00\x00"))
	f.Add([]byte("UDLT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := NewShardedMap(MapOptions[uint64, uint64]{Shards: 4})
		m.Store(1, 1)
		m.Store(9, 9)
		before := mapContents[uint64, uint64](m)
		if err := m.ApplyDelta(context.Background(), bytes.NewReader(data)); err != nil {
			if diff := cmp.Diff(before, mapContents[uint64, uint64](m)); diff != "" {
				t.Fatalf("refused delta changed the map: %v\n%s", err, diff)
			}
		}
	})
}
