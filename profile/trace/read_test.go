package trace_test

import (
	"bytes"
	"compress/gzip"
	"os"
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
	// Percentages of a machine of AlibabaCores cores and AlibabaMemory bytes.
	require.InDelta(t, 0.3*trace.AlibabaCores, series[0].Points[0].Usage[hal.CPU], 1e-9, "rows at 30 s and 100 s share a step")
	require.InDelta(t, 0.85*trace.AlibabaMemory, series[0].Points[0].Usage[hal.Memory], 1)
	require.InDelta(t, 0.6*trace.AlibabaCores, series[0].Points[1].Usage[hal.CPU], 1e-9)
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
