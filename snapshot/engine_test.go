package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// fillMap stores n entries whose values are partly compressible.
func fillMap(t testing.TB, m *Map[uint64, []byte], n int, valueBytes int) {
	t.Helper()
	for i := range n {
		m.Store(uint64(i), testValue(uint64(i), valueBytes))
	}
}

func testValue(k uint64, n int) []byte {
	v := make([]byte, n)
	x := mix64(k + 1)
	for i := range v {
		if i%8 == 0 {
			x = mix64(x)
		}
		if i%16 < 8 { // half random, half a pattern: compresses about 2:1
			v[i] = byte(x >> (8 * (i % 8)))
		} else {
			v[i] = byte(i)
		}
	}
	return v
}

type testState struct {
	routes *Map[uint64, []byte]
	conns  *Map[string, int64]
}

func newTestState(t testing.TB) testState {
	routes, err := NewMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	conns, err := NewMap(MapOptions[string, int64]{})
	require.NoError(t, err)
	return testState{routes, conns}
}

func (s testState) sources() map[string]Source {
	return map[string]Source{"routes": s.routes, "conns": s.conns}
}

func newTestEngine(t testing.TB, store Store, s testState, opts Options) *Engine {
	t.Helper()
	e, err := New(store, s.sources(), opts)
	require.NoError(t, err)
	return e
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"encrypted", testKey}} {
		t.Run(tc.name, func(t *testing.T) {
			stores := map[string]Store{"mem": NewMemStore()}
			fs, err := NewFileStore(t.TempDir(), FileStoreOptions{})
			require.NoError(t, err)
			stores["file"] = fs
			for sname, store := range stores {
				t.Run(sname, func(t *testing.T) {
					src := newTestState(t)
					fillMap(t, src.routes, 3000, 700) // ~2 MB: several chunks
					for i := range 100 {
						src.conns.Store(fmt.Sprint("conn-", i), int64(i))
					}
					e := newTestEngine(t, store, src, Options{AppVersion: "1.0", Key: tc.key, ChunkBytes: 256 << 10})
					m, err := e.Snapshot(ctx)
					require.NoError(t, err)
					require.Equal(t, []string{"conns", "routes"}, []string{m.Sources[0].Name, m.Sources[1].Name})
					require.Greater(t, len(m.Sources[1].Chunks), 4)
					require.Equal(t, tc.key != nil, m.Encrypted)
					require.Positive(t, m.Pause)

					loaded, err := e.Load(ctx, m.ID)
					require.NoError(t, err)
					if diff := cmp.Diff(m, loaded); diff != "" {
						t.Fatalf("stored manifest differs from returned one (-want +got):\n%s", diff)
					}

					dst := newTestState(t)
					dst.routes.Store(999999, []byte("stale"))
					e2 := newTestEngine(t, store, dst, Options{AppVersion: "1.0", Key: tc.key})
					require.NoError(t, e2.Restore(ctx, Manifest{ID: m.ID}))
					if !reflect.DeepEqual(mapContents[uint64, []byte](src.routes), mapContents[uint64, []byte](dst.routes)) {
						t.Fatal("routes differ after restore")
					}
					require.Equal(t, mapContents[string, int64](src.conns), mapContents[string, int64](dst.conns))
				})
			}
		})
	}
}

// TestCutIsConsistent writes to two maps in lockstep (a conn counter and a
// route, always updated together) while snapshots are taken; every
// snapshot must hold pairs from the same step.
func TestCutIsConsistent(t *testing.T) {
	ctx := context.Background()
	s := newTestState(t)
	store := NewMemStore()
	e := newTestEngine(t, store, s, Options{})
	stop := make(chan struct{})
	done := make(chan struct{})
	var step atomic.Int64
	// The host pause hook guards the pair of writes, as a data plane's
	// worker loop would.
	var hostMu = make(chan struct{}, 1)
	e.opts.Pause = func(ctx context.Context) (func(), error) {
		hostMu <- struct{}{}
		return func() { <-hostMu }, nil
	}
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			hostMu <- struct{}{}
			s.conns.Store("step", i)
			s.routes.Store(1, []byte(fmt.Sprint(i)))
			<-hostMu
			step.Store(i)
		}
	}()
	for range 20 {
		m, err := e.Snapshot(ctx)
		require.NoError(t, err)
		dst := newTestState(t)
		require.NoError(t, newTestEngine(t, store, dst, Options{}).Restore(ctx, m))
		c, cok := dst.conns.Load("step")
		r, rok := dst.routes.Load(1)
		require.Equal(t, cok, rok, "cut holds one half of a step")
		if cok {
			require.Equal(t, fmt.Sprint(c), string(r), "cut mixes two steps")
		}
	}
	close(stop)
	<-done
	require.Positive(t, step.Load())
}

// faultySource fails, panics or misbehaves on demand, and records whether it
// is paused.
type faultySource struct {
	failPause   bool
	failCapture bool
	panicOn     string // "pause", "capture", "write", "restore"
	paused      int
	resumed     int
	restored    []byte
	data        []byte
}

func (s *faultySource) Pause(ctx context.Context) error {
	if s.panicOn == "pause" {
		panic("pause exploded")
	}
	if s.failPause {
		return errors.New("cannot pause")
	}
	s.paused++
	return nil
}

func (s *faultySource) Resume() { s.resumed++ }

func (s *faultySource) Capture(ctx context.Context) (View, error) {
	if s.panicOn == "capture" {
		panic("capture exploded")
	}
	if s.failCapture {
		return nil, errors.New("disk on fire")
	}
	return faultyView{s}, nil
}

func (s *faultySource) Restore(ctx context.Context, r io.Reader) error {
	if s.panicOn == "restore" {
		panic("restore exploded")
	}
	b, err := io.ReadAll(r)
	s.restored = b
	return err
}

type faultyView struct{ s *faultySource }

func (v faultyView) WriteTo(w io.Writer) (int64, error) {
	if v.s.panicOn == "write" {
		panic("write exploded")
	}
	n, err := w.Write(v.s.data)
	return int64(n), err
}

func TestCaptureFailuresAbandonTheCut(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		setup func(bad *faultySource)
		want  string
	}{
		"capture error":   {func(b *faultySource) { b.failCapture = true }, `source "b": capture: disk on fire`},
		"capture panic":   {func(b *faultySource) { b.panicOn = "capture" }, `source "b": capture panicked: capture exploded`},
		"pause error":     {func(b *faultySource) { b.failPause = true }, `source "b": pause: cannot pause`},
		"pause panic":     {func(b *faultySource) { b.panicOn = "pause" }, `source "b": pause panicked`},
		"write panic":     {func(b *faultySource) { b.panicOn = "write" }, `view of "b" panicked while writing`},
		"host hook error": {nil, "Options.Pause: host says no"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			store := NewMemStore()
			a, b, z := &faultySource{data: []byte("a")}, &faultySource{data: []byte("b")}, &faultySource{data: []byte("z")}
			hostFails := false
			opts := Options{Pause: func(context.Context) (func(), error) {
				if hostFails {
					return nil, errors.New("host says no")
				}
				return func() {}, nil
			}}
			e, err := New(store, map[string]Source{"a": a, "b": b, "z": z}, opts)
			require.NoError(t, err)
			// A good snapshot first: it must survive the failure.
			good, err := e.Snapshot(ctx)
			require.NoError(t, err)
			if c.setup != nil {
				c.setup(b)
			} else {
				hostFails = true
			}
			a.paused, a.resumed, z.paused, z.resumed = 0, 0, 0, 0

			_, err = e.Snapshot(ctx)
			require.ErrorContains(t, err, c.want)
			if name != "write panic" {
				require.ErrorIs(t, err, ErrCapture)
			}
			for _, s := range []*faultySource{a, b, z} {
				require.Equal(t, s.paused, s.resumed, "a source was left paused")
			}
			ids, err := store.List(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{good.ID}, ids, "the failed snapshot left something behind")
			_, err = e.Load(ctx, good.ID)
			require.NoError(t, err, "the previous good snapshot was damaged")
		})
	}
}

func TestRestoreFailuresAreClear(t *testing.T) {
	ctx := context.Background()
	store := NewMemStore()
	src := &faultySource{data: []byte("hello")}
	e, err := New(store, map[string]Source{"s": src}, Options{AppVersion: "1"})
	require.NoError(t, err)
	m, err := e.Snapshot(ctx)
	require.NoError(t, err)

	t.Run("panicking source", func(t *testing.T) {
		bad := &faultySource{panicOn: "restore"}
		e2, err := New(store, map[string]Source{"s": bad}, Options{AppVersion: "1"})
		require.NoError(t, err)
		require.ErrorContains(t, e2.Restore(ctx, m), `source "s": restore panicked`)
	})
	t.Run("unknown source in snapshot", func(t *testing.T) {
		e2, err := New(store, map[string]Source{"other": &faultySource{}}, Options{AppVersion: "1"})
		require.NoError(t, err)
		err = e2.Restore(ctx, m)
		require.ErrorIs(t, err, ErrSourceMismatch)
		require.ErrorContains(t, err, `snapshot holds source "s", which is not registered`)
	})
	t.Run("registered source missing", func(t *testing.T) {
		extra := &faultySource{}
		e2, err := New(store, map[string]Source{"s": &faultySource{}, "extra": extra}, Options{AppVersion: "1"})
		require.NoError(t, err)
		require.ErrorIs(t, e2.Restore(ctx, m), ErrSourceMismatch)
	})
	t.Run("other app version refused", func(t *testing.T) {
		dst := &faultySource{}
		e2, err := New(store, map[string]Source{"s": dst}, Options{AppVersion: "2"})
		require.NoError(t, err)
		err = e2.Restore(ctx, m)
		require.ErrorIs(t, err, ErrAppVersion)
		require.ErrorContains(t, err, `made by app version "1", this is "2"`)
		require.Nil(t, dst.restored)
	})
	t.Run("other app version upgraded", func(t *testing.T) {
		dst := &faultySource{}
		upgrade := func(ctx context.Context, from Manifest, source string, r io.Reader) (io.Reader, error) {
			if from.AppVersion != "1" {
				return nil, fmt.Errorf("cannot read %q: %w", from.AppVersion, ErrAppVersion)
			}
			b, err := io.ReadAll(r)
			return strings.NewReader(strings.ToUpper(string(b))), err
		}
		e2, err := New(store, map[string]Source{"s": dst}, Options{AppVersion: "2", Upgrade: upgrade})
		require.NoError(t, err)
		require.NoError(t, e2.Restore(ctx, m))
		require.Equal(t, "HELLO", string(dst.restored))
	})
	t.Run("missing snapshot", func(t *testing.T) {
		require.ErrorIs(t, e.Restore(ctx, Manifest{ID: "nope"}), ErrNotFound)
	})
}

func TestNewValidates(t *testing.T) {
	s := &faultySource{}
	store := NewMemStore()
	cases := map[string]struct {
		store   Store
		sources map[string]Source
		opts    Options
		want    string
	}{
		"nil store":      {nil, map[string]Source{"a": s}, Options{}, "store is nil"},
		"no sources":     {store, nil, Options{}, "no sources"},
		"empty name":     {store, map[string]Source{"": s}, Options{}, "empty name"},
		"nil source":     {store, map[string]Source{"a": nil}, Options{}, `source "a" is nil`},
		"colliding":      {store, map[string]Source{"Routes": s, "routes": &faultySource{}}, Options{}, `source names "Routes" and "routes" collide`},
		"same twice":     {store, map[string]Source{"a": s, "b": s}, Options{}, `sources "a" and "b" are the same object`},
		"control char":   {store, map[string]Source{"a\nb": s}, Options{}, "control character"},
		"short key":      {store, map[string]Source{"a": s}, Options{Key: []byte("short")}, "Key is 5 bytes"},
		"huge chunk":     {store, map[string]Source{"a": s}, Options{ChunkBytes: 1 << 30}, "ChunkBytes"},
		"bad level":      {store, map[string]Source{"a": s}, Options{CompressionLevel: 9}, "CompressionLevel"},
		"bad concurrncy": {store, map[string]Source{"a": s}, Options{Concurrency: -1}, "Concurrency"},
		"share above 1":  {store, map[string]Source{"a": s}, Options{CPUShare: 1.5}, "CPUShare 1.5 out of range"},
		"share negative": {store, map[string]Source{"a": s}, Options{CPUShare: -0.1}, "CPUShare -0.1 out of range"},
		"share NaN":      {store, map[string]Source{"a": s}, Options{CPUShare: math.NaN()}, "CPUShare NaN out of range"},
		"share parallel": {store, map[string]Source{"a": s}, Options{CPUShare: 0.5, Concurrency: 2}, "but Concurrency is 2"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(c.store, c.sources, c.opts)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestSnapshotToFailingStore(t *testing.T) {
	ctx := context.Background()
	store := NewMemStore()
	src := &faultySource{data: bytes.Repeat([]byte("x"), 3<<20)}
	e, err := New(store, map[string]Source{"s": src}, Options{ChunkBytes: 64 << 10})
	require.NoError(t, err)
	good, err := e.Snapshot(ctx)
	require.NoError(t, err)
	store.FailWrites = errors.New("no space left on device")
	_, err = e.Snapshot(ctx)
	require.ErrorContains(t, err, "no space left on device")
	ids, _ := store.List(ctx)
	require.Equal(t, []string{good.ID}, ids)
	_, err = e.Load(ctx, good.ID)
	require.NoError(t, err)
}

func TestSnapshotHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e, err := New(NewMemStore(), map[string]Source{"s": &faultySource{}}, Options{})
	require.NoError(t, err)
	_, err = e.Snapshot(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, e.Restore(ctx, Manifest{ID: "x"}), context.Canceled)
}

func TestClockNamesSnapshots(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	store := NewMemStore()
	e, err := New(store, map[string]Source{"s": &faultySource{}}, Options{Clock: func() time.Time { now = now.Add(time.Second); return now }})
	require.NoError(t, err)
	m1, err := e.Snapshot(ctx)
	require.NoError(t, err)
	m2, err := e.Snapshot(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(m1.ID, "20261126T220001."), m1.ID)
	require.Equal(t, now, m2.Created)
	require.Less(t, m1.ID, m2.ID)
	latest, err := e.Latest(ctx)
	require.NoError(t, err)
	require.Equal(t, m2.ID, latest.ID)
}

func TestConcurrentSnapshots(t *testing.T) {
	ctx := context.Background()
	s := newTestState(t)
	fillMap(t, s.routes, 400, 500)
	store := NewMemStore()
	e := newTestEngine(t, store, s, Options{Key: testKey, ChunkBytes: 32 << 10})
	const n = 4
	manifests := make([]Manifest, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := range n {
		go func() {
			manifests[i], errs[i] = e.Snapshot(ctx)
			done <- i
		}()
	}
	for range n {
		<-done
	}
	for i := range n {
		require.NoError(t, errs[i])
		dst := newTestState(t)
		require.NoError(t, newTestEngine(t, store, dst, Options{Key: testKey}).Restore(ctx, manifests[i]))
		require.Equal(t, 400, dst.routes.Len())
	}
}

// plainSource is a Source that is not a Stager: its Restore reads the
// stream itself.
type plainSource struct {
	mu sync.Mutex
	b  []byte
}

type plainView []byte

func (v plainView) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(v)
	return int64(n), err
}

func (s *plainSource) Capture(context.Context) (View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return plainView(bytes.Clone(s.b)), nil
}

func (s *plainSource) Restore(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
	return err
}

func (s *plainSource) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestRestoreNamedSources: naming sources restores only them, staged and
// plain alike, from either store; a name that is not registered is
// refused before anything changes.
func TestRestoreNamedSources(t *testing.T) {
	ctx := context.Background()
	for _, memory := range []int64{0, -1} { // in-memory spool, and a second read
		t.Run(fmt.Sprint("restore-memory=", memory), func(t *testing.T) {
			src := newTestState(t)
			fillMap(t, src.routes, 500, 300)
			src.conns.Store("c1", 1)
			note := &plainSource{b: []byte("v1 notes")}
			sources := map[string]Source{"routes": src.routes, "conns": src.conns, "note": note}
			store := NewMemStore()
			e, err := New(store, sources, Options{RestoreMemory: memory})
			require.NoError(t, err)
			m, err := e.Snapshot(ctx)
			require.NoError(t, err)

			// The new version changes everything.
			src.routes.Store(1, []byte("new"))
			src.conns.Store("c2", 2)
			note.b = []byte("v2 notes")
			wantRoutes := mapContents[uint64, []byte](src.routes)

			err = e.Restore(ctx, m, "conns", "nope")
			require.ErrorIs(t, err, ErrSourceMismatch)
			assert.Contains(t, err.Error(), `source "nope" is not registered`)
			assert.Equal(t, map[string]int64{"c1": 1, "c2": 2}, mapContents[string, int64](src.conns), "nothing restored")

			require.NoError(t, e.Restore(ctx, m, "conns", "note"))
			assert.Equal(t, map[string]int64{"c1": 1}, mapContents[string, int64](src.conns))
			assert.Equal(t, "v1 notes", note.get())
			assert.Equal(t, wantRoutes, mapContents[uint64, []byte](src.routes), "a source not named keeps the new version's state")

			require.NoError(t, e.Restore(ctx, m))
			assert.NotEqual(t, wantRoutes, mapContents[uint64, []byte](src.routes), "no names: every source")
		})
	}
}
