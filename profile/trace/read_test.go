package trace_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

func TestReadBitbrainsHandlesQuirks(t *testing.T) {
	plain, err := os.ReadFile("testdata/bitbrains.csv")
	require.NoError(t, err)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	for name, data := range map[string][]byte{"plain": plain, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			series, st, err := trace.Read(bytes.NewReader(data), "vm.csv")
			require.NoError(t, err)
			require.Len(t, series, 1)
			require.Equal(t, 7, st.Rows)
			require.Equal(t, 1, st.Broken)
			require.Equal(t, 1, st.Duplicates, "the second row at 1372629900 is dropped")
			require.Equal(t, 1, st.Off)
			require.Len(t, st.Problems, 1)
			require.Contains(t, st.Problems[0], "vm.csv:6: field 4 (CPU usage MHz)")

			pts := series[0].Points
			require.Len(t, pts, 3, "sorted, one point per 5-minute step, the two rows at :801 and :810 averaged")
			require.Equal(t, time.Unix(1372629600, 0).UTC(), pts[0].Time)
			// 2500 MHz on cores of 2500 MHz each = 1 core; 2 GiB.
			require.InDelta(t, 1.0, pts[0].Usage[hal.CPU], 1e-9)
			require.InDelta(t, 2<<30, pts[0].Usage[hal.Memory], 1e-3)
			require.InDelta(t, 0.5, pts[1].Usage[hal.CPU], 1e-9)
			require.InDelta(t, 16*1024, pts[1].Usage[hal.IO], 1e-9)
			require.InDelta(t, 0.4, pts[2].Usage[hal.CPU], 1e-9)
			for i := 1; i < len(pts); i++ {
				require.True(t, pts[i].Time.After(pts[i-1].Time))
			}
		})
	}
}

func TestReadAlibaba(t *testing.T) {
	series, st, err := trace.ReadFile("testdata/alibaba.csv")
	require.NoError(t, err)
	require.Equal(t, 7, st.Rows)
	require.Equal(t, 2, st.Broken, "a bad time_stamp and a short row")
	require.Equal(t, 1, st.Off)
	require.Equal(t, 2, st.Partial, "disk_io_percent -1 and 101 are dropped, the rows kept")
	require.Len(t, series, 2)
	require.Equal(t, "alibaba.csv/m_1", series[0].Name)
	require.Len(t, series[0].Points, 2)
	require.InDelta(t, 0.3, series[0].Points[0].Usage[hal.CPU], 1e-9, "rows at 30 s and 100 s share a step")
	require.InDelta(t, 0.6, series[0].Points[1].Usage[hal.CPU], 1e-9)
	require.Equal(t, "alibaba.csv/m_2", series[1].Name)
	_, hasIO := series[1].Points[0].Usage[hal.IO]
	require.False(t, hasIO)
}

func TestReadRejectsUnknownLayouts(t *testing.T) {
	_, _, err := trace.Read(bytes.NewReader([]byte("hello,world\n")), "odd.csv")
	require.ErrorIs(t, err, trace.ErrUnknownLayout)
	require.ErrorContains(t, err, "odd.csv")
	_, _, err = trace.Read(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), "bad.gz")
	require.ErrorContains(t, err, "bad.gz: gzip")
	_, _, err = trace.ReadBitbrains(bytes.NewReader(nil), "empty.csv")
	require.ErrorContains(t, err, "empty.csv: empty file")
	_, _, err = trace.ReadFile("testdata/none.csv")
	require.Error(t, err)
}

func TestReplayScoresWindows(t *testing.T) {
	// One point every 5 minutes for three days: 1 core, except 2 cores
	// in the first 5 minutes of every hour.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s trace.Series
	for i := range 3 * 24 * 12 {
		u := 1.0
		if i%12 == 0 {
			u = 2
		}
		s.Points = append(s.Points, trace.Point{Time: start.Add(time.Duration(i) * trace.Step), Usage: hal.Vector{hal.CPU: u}})
	}
	fixed := fixedForecaster{hal.CPU: 1.5}
	score, err := trace.Replay(context.Background(), s, fixed, trace.ReplayOptions{Resources: []hal.Resource{hal.CPU}})
	require.NoError(t, err)
	cpu := score[hal.CPU]
	require.Equal(t, 2*24*12, cpu.Points, "the first day is warm-up")
	require.InDelta(t, 1.0/12, cpu.ViolationRate(), 1e-9)
	used := 2*24*11*1.0 + 2*24*2.0
	require.InDelta(t, (1.5*2*24*12-used)/used, cpu.Slack(), 1e-9)

	vpa, err := trace.Replay(context.Background(), s, &trace.VPA{}, trace.ReplayOptions{Resources: []hal.Resource{hal.CPU}})
	require.NoError(t, err)
	// p90 of a distribution with 1/12 of points at 2 is 1 (bucketed), +15%.
	require.InDelta(t, 1.0/12, vpa[hal.CPU].ViolationRate(), 1e-9)

	model, err := trace.NewModel(trace.ModelOptions{Quantile: 0.99})
	require.NoError(t, err)
	ms, err := trace.Replay(context.Background(), s, model, trace.ReplayOptions{Resources: []hal.Resource{hal.CPU}})
	require.NoError(t, err)
	require.Less(t, ms[hal.CPU].ViolationRate(), vpa[hal.CPU].ViolationRate(), "p99 covers the hourly burst")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = trace.Replay(ctx, s, fixed, trace.ReplayOptions{})
	require.ErrorIs(t, err, context.Canceled)

	_, err = trace.Replay(context.Background(), s, failing{}, trace.ReplayOptions{})
	require.ErrorContains(t, err, "window at 2026-01-02T00:00:00Z")

	_, err = trace.NewModel(trace.ModelOptions{Quantile: 0.9})
	require.ErrorContains(t, err, "quantile 0.9")
}

type fixedForecaster hal.Vector

func (f fixedForecaster) Observe(trace.Point) {}
func (f fixedForecaster) Reserve(context.Context, time.Time, time.Duration) (hal.Vector, error) {
	return hal.Vector(f), nil
}

type failing struct{}

func (failing) Observe(trace.Point) {}
func (failing) Reserve(context.Context, time.Time, time.Duration) (hal.Vector, error) {
	return nil, errors.New("no forecast")
}

// tracesDir finds the shared traces, ../shared/traces from the repository
// root, from this package's directory.
func tracesDir(t testing.TB) string {
	dir, err := filepath.Abs("../../../shared/traces")
	require.NoError(t, err)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared traces not found at %s (they live beside the repository, not in it): %v", dir, err)
	}
	return dir
}

// TestReplayOnSharedTraces replays a few real traces: every file reads
// without a broken row, the model's quantiles are calibrated (its P95 is
// exceeded at about 5% of points or fewer, its P99 at about 1%), and at
// P95 it reserves less than the baseline.
func TestReplayOnSharedTraces(t *testing.T) {
	dir := tracesDir(t)
	files := []string{"bitbrains-rnd-2013-7/3.csv.gz", "bitbrains-rnd-2013-7/14.csv.gz", "alibaba-2018/machine_usage.csv.gz"}
	p95, p99, base := trace.Score{}, trace.Score{}, trace.Score{}
	for _, f := range files {
		series, st, err := trace.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Zero(t, st.Broken, "%s: %v", f, st.Problems)
		for _, s := range series {
			for q, score := range map[float64]trace.Score{0.95: p95, 0.99: p99} {
				m, err := trace.NewModel(trace.ModelOptions{Quantile: q})
				require.NoError(t, err)
				ms, err := trace.Replay(context.Background(), s, m, trace.ReplayOptions{})
				require.NoError(t, err)
				score.Add(ms)
			}
			bs, err := trace.Replay(context.Background(), s, &trace.VPA{}, trace.ReplayOptions{})
			require.NoError(t, err)
			base.Add(bs)
		}
	}
	t.Logf("model p95 slack=%.1f%% violations=%.2f%% | p99 slack=%.1f%% violations=%.2f%% | baseline slack=%.1f%% violations=%.2f%%",
		100*p95.Slack(), 100*p95.ViolationRate(), 100*p99.Slack(), 100*p99.ViolationRate(), 100*base.Slack(), 100*base.ViolationRate())
	require.Greater(t, p95[hal.CPU].Points, 10000)
	require.LessOrEqual(t, p95.ViolationRate(), 0.06)
	require.LessOrEqual(t, p99.ViolationRate(), 0.02)
	require.Less(t, p99.ViolationRate(), p95.ViolationRate())
	require.Greater(t, p99.Slack(), p95.Slack())
	require.Less(t, p95.Slack(), base.Slack())
}

func FuzzReadBitbrains(f *testing.F) {
	seed, err := os.ReadFile("testdata/bitbrains.csv")
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte("Timestamp\n1;2;3\n"))
	f.Add([]byte("Timestamp\n1e300;\t2;\t5000;\t1;\t1;\t1;\t1;\t1;\t1;\t1;\t1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		series, _, err := trace.Read(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			return
		}
		checkSeries(t, series)
	})
}

func FuzzReadAlibaba(f *testing.F) {
	seed, err := os.ReadFile("testdata/alibaba.csv")
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte("m_1,-5,1,1,,,1,1,1\n"))
	f.Add([]byte("m_,9223372036854775807,1,1,,,1,1,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		series, _, err := trace.Read(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			return
		}
		checkSeries(t, series)
	})
}

func checkSeries(t *testing.T, series []trace.Series) {
	t.Helper()
	for _, s := range series {
		for i, p := range s.Points {
			if err := p.Usage.Validate(); err != nil {
				t.Fatalf("%s point %d: %v", s.Name, i, err)
			}
			if i > 0 && !p.Time.After(s.Points[i-1].Time) {
				t.Fatalf("%s point %d is not after the one before", s.Name, i)
			}
		}
	}
}
