package snapshot

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// fakePacing is a pacing clock whose time moves only when a test says the
// encoder worked (work) or when the pacer sleeps; it records every sleep.
type fakePacing struct {
	t      time.Time
	sleeps []time.Duration
	err    error         // returned by sleep when set
	late   time.Duration // added to the next sleep, once: a timer firing late
}

func (f *fakePacing) clock() pacingClock {
	return pacingClock{
		now: func() time.Time { return f.t },
		sleep: func(_ context.Context, d time.Duration) error {
			if f.err != nil {
				return f.err
			}
			f.sleeps = append(f.sleeps, d)
			f.t = f.t.Add(d + f.late)
			f.late = 0
			return nil
		},
	}
}

func TestPacerKeepsWorkToItsShare(t *testing.T) {
	ctx := context.Background()
	f := &fakePacing{t: time.Unix(1000, 0)}
	p := newPacer(0.25, f.clock())
	start := f.t
	var worked time.Duration
	for i, w := range []time.Duration{time.Millisecond, 3 * time.Millisecond, 500 * time.Microsecond, 2 * time.Millisecond} {
		f.t = f.t.Add(w)
		worked += w
		require.NoError(t, p.rest(ctx))
		// A quarter of a core: three times the work in rest after it.
		require.Equal(t, 3*w, f.sleeps[i], "rest %d", i)
		require.Equal(t, 4*worked, f.t.Sub(start), "after rest %d: work is a quarter of the time", i)
	}

	// A rest that oversleeps is credited: the next one is shorter by as much.
	f.late = 2 * time.Millisecond // the timer fires 2 ms late
	f.t = f.t.Add(time.Millisecond)
	require.NoError(t, p.rest(ctx))
	f.t = f.t.Add(time.Millisecond)
	require.NoError(t, p.rest(ctx))
	require.Equal(t, time.Millisecond, f.sleeps[len(f.sleeps)-1], "3 ms owed less the 2 ms overslept")

	// Time the encoder spends descheduled counts as work (the pacer reads
	// the wall clock): it rests for it too.
	f.t = f.t.Add(11 * time.Millisecond) // 1 ms of work, 10 ms waiting for a core
	require.NoError(t, p.rest(ctx))
	require.Equal(t, 33*time.Millisecond, f.sleeps[len(f.sleeps)-1])
}

func TestPacerAtAWholeCoreNeverRests(t *testing.T) {
	f := &fakePacing{t: time.Unix(1000, 0)}
	p := newPacer(1, f.clock())
	for range 5 {
		f.t = f.t.Add(time.Millisecond)
		require.NoError(t, p.rest(context.Background()))
	}
	require.Empty(t, f.sleeps)
}

// clockedSource counts every byte its views write as 1 ns of a fake
// clock's time: the encoding's work, as the pacer sees it.
type clockedSource struct {
	Source
	f *fakePacing
}

func (s clockedSource) Capture(ctx context.Context) (View, error) {
	v, err := s.Source.Capture(ctx)
	return clockedView{v, s.f}, err
}

type clockedView struct {
	View
	f *fakePacing
}

func (v clockedView) WriteTo(w io.Writer) (int64, error) {
	return v.View.WriteTo(clockedWriter{w, v.f})
}

func (v clockedView) Close() error {
	if c, ok := v.View.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type clockedWriter struct {
	w io.Writer
	f *fakePacing
}

func (w clockedWriter) Write(b []byte) (int, error) {
	w.f.t = w.f.t.Add(time.Duration(len(b)))
	return w.w.Write(b)
}

// TestPacedSnapshotRestoresEqual takes a paced snapshot (one goroutine,
// resting after every chunk) of state written to while it rests, and
// restores it: what comes back is exactly the cut; the encoder rested
// once per chunk, and after each rest its work was CPUShare of the time.
func TestPacedSnapshotRestoresEqual(t *testing.T) {
	ctx := context.Background()
	routes, err := NewMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	fillMap(t, routes, 3000, 700) // ~2 MB: several 256 KiB chunks
	f := &fakePacing{t: time.Unix(1000, 0)}
	store := NewMemStore()
	e, err := New(store, map[string]Source{"routes": clockedSource{routes, f}}, Options{AppVersion: "1", ChunkBytes: 256 << 10, CPUShare: 0.3})
	require.NoError(t, err)
	require.Equal(t, 1, e.workers, "a paced snapshot is encoded on one goroutine")

	var want map[uint64][]byte
	var start time.Time
	e.opts.Pause = func(context.Context) (func(), error) {
		return func() { want, start = mapContents[uint64, []byte](routes), f.t }, nil
	}
	c := f.clock()
	sleep := c.sleep
	var slept time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		require.NotNil(t, want, "the encoder rested before the cut")
		routes.Store(uint64(len(f.sleeps)), []byte("written while the encoder rests"))
		slept += d
		if err := sleep(ctx, d); err != nil {
			return err
		}
		elapsed := f.t.Sub(start)
		work := elapsed - slept
		require.InDelta(t, float64(work)/0.3, float64(elapsed), float64(time.Microsecond), "rest %d: work %v of %v", len(f.sleeps), work, elapsed)
		return nil
	}
	e.clock = c
	m, err := e.Snapshot(ctx)
	require.NoError(t, err)
	chunks := len(m.Sources[0].Chunks)
	require.Greater(t, chunks, 4)
	require.Len(t, f.sleeps, chunks, "one rest after every chunk")

	dst, err := NewMap(MapOptions[uint64, []byte]{})
	require.NoError(t, err)
	r, err := New(store, map[string]Source{"routes": dst}, Options{AppVersion: "1"})
	require.NoError(t, err)
	require.NoError(t, r.Restore(ctx, Manifest{ID: m.ID}))
	if diff := cmp.Diff(want, mapContents[uint64, []byte](dst)); diff != "" {
		t.Fatalf("restored state differs from the cut (-cut +restored):\n%s", diff)
	}
}

// TestPacedSnapshotStopsWithItsContext: a paced encoder resting when the
// snapshot is cancelled returns the cancellation, and no snapshot is kept.
func TestPacedSnapshotStopsWithItsContext(t *testing.T) {
	src := newTestState(t)
	fillMap(t, src.routes, 3000, 700)
	store := NewMemStore()
	e := newTestEngine(t, store, src, Options{AppVersion: "1", ChunkBytes: 256 << 10, CPUShare: 0.5})
	f := &fakePacing{t: time.Unix(1000, 0), err: context.Canceled}
	c := f.clock()
	now := c.now
	c.now = func() time.Time { f.t = f.t.Add(time.Millisecond); return now() }
	e.clock = c
	_, err := e.Snapshot(context.Background())
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	ids, err := store.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, ids)
}
