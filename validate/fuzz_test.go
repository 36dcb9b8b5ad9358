package validate_test

import (
	"encoding/binary"
	"github.com/updraft-dev/updraft/validate/internal/stats"
	"math"
	"testing"

	"github.com/updraft-dev/updraft/validate"
)

// floats decodes b as little-endian float64s (a trailing partial word is
// dropped), so the fuzzer can produce any value, NaN and ±Inf included.
func floats(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[i*8:]))
	}
	return out
}

func encode(fs ...float64) []byte {
	b := make([]byte, 8*len(fs))
	for i, f := range fs {
		binary.LittleEndian.PutUint64(b[i*8:], math.Float64bits(f))
	}
	return b
}

// FuzzMetricJudge feeds arbitrary samples to a comparison: the verdict is
// always defined, the score in [0, 1], bad values are never a pass, and
// too few samples are never a pass.
func FuzzMetricJudge(f *testing.F) {
	f.Add(encode(1, 2, 3), encode(4, 5, 6), uint8(0))
	f.Add(encode(1, math.NaN()), encode(1), uint8(1))
	f.Add(encode(0, 0, 0, 0), encode(math.Inf(1), 0, 0, 0), uint8(2))
	f.Add(encode(-1e308, 1e308, 5, 5), encode(5, 5, -5, 1e-308), uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, dir uint8) {
		m, err := validate.NewMetricComparison("m", validate.SourceFunc(nil), validate.MetricOptions{
			Direction:  validate.Direction(dir % 3),
			MinSamples: 3,
			Bounds:     []validate.QuantileBound{{Quantile: 0.9, MaxRegression: 0.1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		base, now := floats(a), floats(b)
		r := m.Judge(base, now)
		if r.Verdict != validate.Pass && r.Verdict != validate.Marginal && r.Verdict != validate.Fail {
			t.Fatalf("undefined verdict %d", r.Verdict)
		}
		if !(r.Score >= 0 && r.Score <= 1) {
			t.Fatalf("score %v outside [0, 1]: %v", r.Score, r.Evidence)
		}
		if r.Verdict == validate.Pass && r.Err != nil {
			t.Fatalf("pass with error %v", r.Err)
		}
		bad := false
		for _, v := range append(append([]float64(nil), base...), now...) {
			bad = bad || math.IsNaN(v) || math.IsInf(v, 0)
		}
		if (bad || len(base) < 3 || len(now) < 3) && r.Verdict == validate.Pass {
			t.Fatalf("bad or tiny input passed: %v / %v", base, now)
		}
	})
}

// FuzzFisherExact checks the p-value is a probability and that more events
// in the second group never make it larger.
func FuzzFisherExact(f *testing.F) {
	f.Add(int64(1), int64(4), int64(3), int64(4))
	f.Add(int64(0), int64(1000), int64(50), int64(1000))
	f.Add(int64(5), int64(4), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, e1, t1, e2, t2 int64) {
		const limit = 1 << 20
		if t1 > limit || t2 > limit || t1 < -limit || t2 < -limit {
			return // keep each run fast
		}
		p, err := stats.FisherExact(e1, t1, e2, t2)
		if e1 < 0 || e2 < 0 || e1 > t1 || e2 > t2 {
			if err == nil {
				t.Fatalf("impossible counts %d/%d %d/%d accepted", e1, t1, e2, t2)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !(p >= 0 && p <= 1) {
			t.Fatalf("p = %v", p)
		}
		if e2 < t2 {
			q, err := stats.FisherExact(e1, t1, e2+1, t2)
			if err != nil {
				t.Fatal(err)
			}
			if q > p+1e-9 {
				t.Fatalf("p rose from %v to %v with one more event", p, q)
			}
		}
	})
}
