package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bruteU counts pairs x > y plus half the ties: the definition of U,
// computed without ranks.
func bruteU(x, y []float64) float64 {
	var u float64
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
			case a == b:
				u += 0.5
			}
		}
	}
	return u
}

func TestMannWhitneyUMatchesPairCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n1, n2 := 1+rng.IntN(30), 1+rng.IntN(30)
		x, y := make([]float64, n1), make([]float64, n2)
		for i := range x {
			x[i] = float64(rng.IntN(10)) // many ties
		}
		for i := range y {
			y[i] = float64(rng.IntN(12))
		}
		res, err := MannWhitney(x, y, TwoSided)
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteU(x, y); res.U != want {
			t.Fatalf("trial %d: U = %v, pair count gives %v (x=%v y=%v)", trial, res.U, want, x, y)
		}
	}
}

// TestMannWhitneyRReference checks the example of R's ?wilcox.test
// (Hollander & Wolfe): W = 35, p-value = 0.1272 for alternative "greater".
func TestMannWhitneyRReference(t *testing.T) {
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	res, err := MannWhitney(x, y, Greater)
	if err != nil {
		t.Fatal(err)
	}
	if res.U != 35 || !res.Exact {
		t.Fatalf("U = %v exact = %v, want 35 exact", res.U, res.Exact)
	}
	if math.Abs(res.PValue-0.1272) > 0.00005 {
		t.Fatalf("p = %.5f, R gives 0.1272", res.PValue)
	}
}

// TestMannWhitneyCriticalValues checks the exact distribution against the
// published table of two-sided critical values at α = 0.05: U ≤ critical
// is significant, U = critical+1 is not.
func TestMannWhitneyCriticalValues(t *testing.T) {
	table := []struct{ n1, n2, crit int }{
		{5, 5, 2}, {5, 10, 8}, {6, 6, 5}, {7, 7, 8}, {8, 8, 13}, {9, 9, 17}, {10, 10, 23}, {20, 20, 127},
	}
	for _, c := range table {
		p := exactPValue(c.n1, c.n2, float64(c.crit), TwoSided)
		pNext := exactPValue(c.n1, c.n2, float64(c.crit+1), TwoSided)
		if p > 0.05 || pNext <= 0.05 {
			t.Errorf("n1=%d n2=%d: p(U=%d) = %.4f, p(U=%d) = %.4f; table says %d is the critical value",
				c.n1, c.n2, c.crit, p, c.crit+1, pNext, c.crit)
		}
	}
}

// TestUDistributionMatchesEnumeration compares the recurrence with a count
// over every assignment of ranks to x.
func TestUDistributionMatchesEnumeration(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {2, 3}, {4, 5}, {6, 6}, {3, 9}} {
		n1, n2 := sz[0], sz[1]
		n := n1 + n2
		want := make([]float64, n1*n2+1)
		for mask := 0; mask < 1<<n; mask++ {
			bits := 0
			for m := mask; m > 0; m &= m - 1 {
				bits++
			}
			if bits != n1 {
				continue
			}
			// rank r (0-based) belongs to x when bit r is set; U = Σ over x
			// of the number of y below it.
			u, ys := 0, 0
			for r := range n {
				if mask&(1<<r) != 0 {
					u += ys
				} else {
					ys++
				}
			}
			want[u]++
		}
		got := uDistribution(n1, n2)
		for u := range want {
			if got[u] != want[u] {
				t.Fatalf("n1=%d n2=%d u=%d: recurrence %v, enumeration %v", n1, n2, u, got[u], want[u])
			}
		}
	}
}

// TestMannWhitneyNormalCloseToExact compares the normal approximation with
// the exact distribution for 20 + 20 samples.
func TestMannWhitneyNormalCloseToExact(t *testing.T) {
	n1, n2 := 20, 20
	x, y := make([]float64, n1), make([]float64, n2)
	for u := 100; u <= 300; u += 25 {
		// Build samples with statistic u: y = 0..19; x[i] beats u/20 or u/20+1 of them.
		for j := range y {
			y[j] = float64(j)
		}
		rem := u
		for i := range x {
			k := rem / (n1 - i)
			rem -= k
			x[i] = float64(k) - 0.5 + float64(i)*1e-6
		}
		if got := bruteU(x, y); got != float64(u) {
			t.Fatalf("construction: U = %v, want %d", got, u)
		}
		xs, ys := SortedCopy(x), SortedCopy(y)
		sumX, tie := rankSum(xs, ys)
		if tie != 0 {
			t.Fatalf("unexpected ties")
		}
		uu := sumX - float64(n1*(n1+1)/2)
		mean, sd := float64(n1*n2)/2, math.Sqrt(float64(n1*n2*(n1+n2+1))/12)
		pNormal := upperTail((uu - mean - 0.5) / sd)
		pExact := exactPValue(n1, n2, uu, Greater)
		if math.Abs(pNormal-pExact) > 0.005 {
			t.Errorf("U=%d: normal p %.4f, exact p %.4f", u, pNormal, pExact)
		}
	}
}

// TestMannWhitneyTieVariance checks the tie-corrected variance against a
// second computation: n1·n2/(n(n−1)) · Σ(rank − (n+1)/2)² over all ranks.
func TestMannWhitneyTieVariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, y := make([]float64, 40), make([]float64, 35)
	for i := range x {
		x[i] = float64(rng.IntN(6))
	}
	for i := range y {
		y[i] = float64(rng.IntN(6))
	}
	res, err := MannWhitney(x, y, Greater)
	if err != nil {
		t.Fatal(err)
	}
	// Ranks by brute force: rank(v) = #below + (#equal+1)/2.
	all := append(append([]float64(nil), x...), y...)
	n := float64(len(all))
	var ss float64
	for _, v := range all {
		below, equal := 0.0, 0.0
		for _, w := range all {
			if w < v {
				below++
			} else if w == v {
				equal++
			}
		}
		r := below + (equal+1)/2
		ss += (r - (n+1)/2) * (r - (n+1)/2)
	}
	variance := float64(len(x)*len(y)) / (n * (n - 1)) * ss
	z := (res.U - float64(len(x)*len(y))/2 - 0.5) / math.Sqrt(variance)
	if math.Abs(z-res.Z) > 1e-9 {
		t.Fatalf("z = %v, second computation %v", res.Z, z)
	}
	if math.Abs(res.PValue-upperTail(z)) > 1e-12 {
		t.Fatalf("p = %v, want %v", res.PValue, upperTail(z))
	}
}

func TestMannWhitneyAlternatives(t *testing.T) {
	low := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	high := []float64{11, 12, 13, 14, 15, 16, 17, 18}
	g, _ := MannWhitney(high, low, Greater)
	l, _ := MannWhitney(high, low, Less)
	two, _ := MannWhitney(high, low, TwoSided)
	if !(g.PValue < 0.001 && l.PValue > 0.99 && math.Abs(two.PValue-2*g.PValue) < 1e-12) {
		t.Fatalf("greater %v less %v two-sided %v", g.PValue, l.PValue, two.PValue)
	}
	same := []float64{5, 5, 5, 5}
	s, err := MannWhitney(same, same, TwoSided)
	if err != nil || s.PValue != 1 {
		t.Fatalf("all tied: p = %v err = %v, want 1", s.PValue, err)
	}
}

func TestMannWhitneyBadInput(t *testing.T) {
	for name, c := range map[string]struct{ x, y []float64 }{
		"empty x": {nil, []float64{1}},
		"empty y": {[]float64{1}, nil},
		"NaN":     {[]float64{1, math.NaN()}, []float64{1}},
		"Inf":     {[]float64{1}, []float64{math.Inf(1)}},
	} {
		if _, err := MannWhitney(c.x, c.y, TwoSided); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := MannWhitney([]float64{1}, []float64{2}, Alternative(7)); err == nil {
		t.Error("undefined alternative: no error")
	}
}

// fisherBig computes the one-sided Fisher p-value with exact big rationals.
func fisherBig(e1, t1, e2, t2 int64) float64 {
	n, k := t1+t2, e1+e2
	num := new(big.Int)
	for x := e2; x <= min(k, t2); x++ {
		a := new(big.Int).Binomial(k, x)
		b := new(big.Int).Binomial(n-k, t2-x)
		num.Add(num, a.Mul(a, b))
	}
	p, _ := new(big.Rat).SetFrac(num, new(big.Int).Binomial(n, t2)).Float64()
	return p
}

func TestFisherExactReference(t *testing.T) {
	// Lady tasting tea: 3 of 4 right; one-sided p = 17/70.
	p, err := FisherExact(1, 4, 3, 4)
	if err != nil || math.Abs(p-17.0/70) > 1e-12 {
		t.Fatalf("tea: p = %v err = %v, want %v", p, err, 17.0/70)
	}
	// Wikipedia's example (men 1 of 12 studying, women 9 of 12): the
	// observed table has probability 3640/2704156 = 0.001346 and the one
	// more extreme 91/2704156, so the one-sided p is 3731/2704156.
	if p, _ := FisherExact(1, 12, 9, 12); math.Abs(p-3731.0/2704156) > 1e-12 {
		t.Fatalf("study: p = %.7f, want %.7f", p, 3731.0/2704156)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		t1, t2 := int64(1+rng.IntN(300)), int64(1+rng.IntN(300))
		e1, e2 := rng.Int64N(t1+1), rng.Int64N(t2+1)
		got, err := FisherExact(e1, t1, e2, t2)
		if err != nil {
			t.Fatal(err)
		}
		want := fisherBig(e1, t1, e2, t2)
		if math.Abs(got-want) > 1e-9*max(1, want) && math.Abs(got-want) > 1e-12 {
			t.Fatalf("FisherExact(%d,%d,%d,%d) = %v, exact %v", e1, t1, e2, t2, got, want)
		}
	}
	if _, err := FisherExact(5, 4, 0, 1); err == nil {
		t.Fatal("events > total: no error")
	}
	if _, err := FisherExact(-1, 4, 0, 1); err == nil {
		t.Fatal("negative: no error")
	}
}

func TestQuantileTypeSeven(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 5.5}, {0.9, 9.1}, {0.25, 3.25}, {1, 10}} {
		if got := Quantile(s, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(1..10, %v) = %v, R gives %v", c.q, got, c.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("empty sample: want NaN")
	}
}

// TestQuantileIntervalCoverage draws 400 samples of 500 from a uniform
// distribution and checks the 95% interval for p90 covers the true 0.9 in
// at least 90% of them.
func TestQuantileIntervalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	covered := 0
	const trials = 400
	s := make([]float64, 500)
	for range trials {
		for i := range s {
			s[i] = rng.Float64()
		}
		sorted := SortedCopy(s)
		lo, hi := QuantileInterval(sorted, 0.9, 0.95)
		if lo > hi {
			t.Fatalf("interval [%v, %v] inverted", lo, hi)
		}
		if lo <= 0.9 && 0.9 <= hi {
			covered++
		}
	}
	if covered < trials*90/100 {
		t.Fatalf("interval covered the true quantile %d of %d times", covered, trials)
	}
}

func FuzzMannWhitney(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5}, []byte{3, 4, 5, 6}, uint8(0))
	f.Add([]byte{7}, []byte{7}, uint8(1))
	f.Add([]byte{0, 0, 0, 9, 9}, []byte{1, 1, 200}, uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, alt uint8) {
		x, y := make([]float64, len(a)), make([]float64, len(b))
		for i, v := range a {
			x[i] = float64(v % 16)
		}
		for i, v := range b {
			y[i] = float64(v % 16)
		}
		res, err := MannWhitney(x, y, Alternative(alt%3))
		if len(x) == 0 || len(y) == 0 {
			if err == nil {
				t.Fatal("empty sample accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteU(x, y); res.U != want {
			t.Fatalf("U = %v, pair count %v", res.U, want)
		}
		if !(res.PValue >= 0 && res.PValue <= 1) {
			t.Fatalf("p = %v outside [0, 1]", res.PValue)
		}
	})
}
