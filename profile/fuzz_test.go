package profile

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The fuzz targets check that every parser of kernel files returns either
// a value or an error naming the file, and never panics.

func FuzzParsePSI(f *testing.F) {
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Add([]byte("some avg10=97.09 avg60=97.05 avg300=81.33 total=563212187\n"))
	f.Add([]byte("some total=x\n"))
	f.Add([]byte("half avg10=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePSI("cpu.pressure", data)
		if err != nil {
			requireNamed(t, err, "cpu.pressure:")
			return
		}
		if p.hasSome != strings.Contains(string(data), "some") && p.hasSome {
			t.Fatalf("some reported without a some line: %q", data)
		}
	})
}

func FuzzParseIOStatV2(f *testing.F) {
	f.Add([]byte("8:0 rbytes=2048 wbytes=4096 rios=1 wios=1 dbytes=0 dios=0\n"))
	f.Add([]byte("8:0 rbytes=1\n253:1 wbytes=2\n"))
	f.Add([]byte("x rbytes=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseIOStatV2("io.stat", data); err != nil {
			requireNamed(t, err, "io.stat:")
		}
	})
}

func FuzzParseBlkioV1(f *testing.F) {
	f.Add([]byte("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Total 12288\nTotal 12288\n"))
	f.Add([]byte("Total 0\n"))
	f.Add([]byte("8:0 Read -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseBlkioV1("blkio.throttle.io_service_bytes", data); err != nil {
			requireNamed(t, err, "blkio.throttle.io_service_bytes:")
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 1000000\nuser_usec 700000\nsystem_usec 300000\n"), "usage_usec")
	f.Add([]byte("usage_usec\n"), "usage_usec")
	f.Add([]byte("a 1\nb x\n"), "b")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		if _, _, err := parseFlatKeyed("cpu.stat", data, key); err != nil {
			requireNamed(t, err, "cpu.stat:")
		}
	})
}

func FuzzParseSingleValue(f *testing.F) {
	f.Add([]byte("123\n"))
	f.Add([]byte("max\n"))
	f.Add([]byte(""))
	f.Add([]byte("1\n2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseSingleValue("memory.current", data); err != nil {
			requireNamed(t, err, "memory.current:")
		}
	})
}

func requireNamed(t *testing.T, err error, prefix string) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %q does not start with %q", err, prefix)
	}
}

// FuzzModel feeds arbitrary observations (values, time steps, gaps,
// out-of-order times) to a series and checks every forecast is finite,
// non-negative and ordered P50 ≤ P95 ≤ P99.
func FuzzModel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, int64(60))
	f.Add([]byte{0, 0, 0, 255, 0, 0}, int64(1))
	f.Add([]byte{255, 255, 255, 255}, int64(-30))
	f.Fuzz(func(t *testing.T, data []byte, step int64) {
		p := &modelParams{levelTau: DefaultLevelTau, trendTau: DefaultTrendTau, horizon: DefaultHorizon,
			halfLife: DefaultHalfLife, minSamples: 4, overrunCost: DefaultOverrunCost}
		var s series
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, b := range data {
			// Values span many orders of magnitude, including zero.
			x := 0.0
			if b != 0 {
				x = math.Ldexp(float64(b), 4*int(b)-520) // from 2^-516 to 2^1012
			}
			if b == 254 {
				x = math.MaxFloat64
			}
			at = at.Add(time.Duration(step%86400) * time.Second)
			if i%7 == 3 {
				at = at.Add(-time.Duration(b) * time.Minute) // a late sample
			}
			s.observe(p, at, x)
			q50, q95, q99, _ := s.forecast(p, at, time.Hour)
			for _, q := range []float64{q50, q95, q99} {
				if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 {
					t.Fatalf("after %d observations: forecast %v %v %v", i+1, q50, q95, q99)
				}
			}
			if q50 > q95 || q95 > q99 {
				t.Fatalf("after %d observations: unordered %v %v %v", i+1, q50, q95, q99)
			}
		}
	})
}
