// Package stats holds the statistical tests validate's comparisons use:
// the Mann-Whitney U test (MannWhitney), Fisher's exact test (FisherExact)
// and sample quantiles with distribution-free confidence intervals
// (Quantile, QuantileInterval). It is internal: nothing outside validate
// uses it, and its API may change with validate's needs.
package stats

import (
	"fmt"
	"math"
	"slices"
)

// Alternative is the alternative hypothesis of a one- or two-sided test.
type Alternative int

const (
	// TwoSided: the samples differ in location, either way.
	TwoSided Alternative = iota
	// Greater: the first sample tends to be greater than the second.
	Greater
	// Less: the first sample tends to be less than the second.
	Less
)

// String returns "two-sided", "greater" or "less".
func (a Alternative) String() string {
	switch a {
	case TwoSided:
		return "two-sided"
	case Greater:
		return "greater"
	case Less:
		return "less"
	}
	return fmt.Sprintf("Alternative(%d)", int(a))
}

// MaxExactSamples is the largest combined sample size for which
// [MannWhitney] computes an exact p-value (when there are no ties); larger
// samples use the normal approximation with tie and continuity corrections.
const MaxExactSamples = 50

// MannWhitneyResult is the outcome of a Mann-Whitney U test of x against y.
type MannWhitneyResult struct {
	// U is the statistic for x: the number of pairs (xi, yj) with xi > yj,
	// plus half the number of ties. U near len(x)*len(y) means x is larger.
	U float64
	// Z is the normal score of U (continuity-corrected); 0 for exact tests.
	Z float64
	// PValue is the probability, if both samples come from one
	// distribution, of a U at least as extreme in the direction of the
	// alternative.
	PValue float64
	// Exact reports whether PValue comes from the exact distribution of U.
	Exact bool
	// Alternative is the hypothesis tested.
	Alternative Alternative
}

// MannWhitney runs the Mann-Whitney U (Wilcoxon rank-sum) test of x against
// y. It needs at least one finite value in each sample and no NaN or
// infinite values. Ties receive average ranks. The p-value is exact for
// small samples without ties (see [MaxExactSamples]), otherwise from the
// normal approximation with the tie-corrected variance and a continuity
// correction, as R's wilcox.test computes it.
func MannWhitney(x, y []float64, alt Alternative) (MannWhitneyResult, error) {
	if err := checkSample("x", x); err != nil {
		return MannWhitneyResult{}, fmt.Errorf("stats: MannWhitney: %w", err)
	}
	if err := checkSample("y", y); err != nil {
		return MannWhitneyResult{}, fmt.Errorf("stats: MannWhitney: %w", err)
	}
	if alt < TwoSided || alt > Less {
		return MannWhitneyResult{}, fmt.Errorf("stats: MannWhitney: undefined alternative %d", int(alt))
	}
	xs, ys := SortedCopy(x), SortedCopy(y)
	return MannWhitneySorted(xs, ys, alt), nil
}

// checkSample rejects empty samples and non-finite values, naming the index.
func checkSample(name string, s []float64) error {
	if len(s) == 0 {
		return fmt.Errorf("sample %s is empty", name)
	}
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sample %s value %d is %v", name, i, v)
		}
	}
	return nil
}

// SortedCopy returns a sorted copy of s.
func SortedCopy(s []float64) []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// MannWhitneySorted runs the test on sorted, finite, non-empty samples.
func MannWhitneySorted(xs, ys []float64, alt Alternative) MannWhitneyResult {
	n1, n2 := float64(len(xs)), float64(len(ys))
	rankSumX, tieTerm := rankSum(xs, ys)
	u := rankSumX - n1*(n1+1)/2
	res := MannWhitneyResult{U: u, Alternative: alt}
	if len(xs)+len(ys) <= MaxExactSamples && tieTerm == 0 {
		res.Exact = true
		res.PValue = exactPValue(len(xs), len(ys), u, alt)
		return res
	}
	n := n1 + n2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 { // every value equal: no evidence of a shift
		res.PValue = 1
		return res
	}
	sd := math.Sqrt(variance)
	d := u - mean
	switch alt {
	case Greater:
		res.Z = (d - 0.5) / sd
		res.PValue = upperTail(res.Z)
	case Less:
		res.Z = (d + 0.5) / sd
		res.PValue = upperTail(-res.Z)
	default:
		res.Z = (math.Abs(d) - 0.5) / sd
		if res.Z < 0 {
			res.Z = 0
		}
		res.PValue = min(1, 2*upperTail(res.Z))
		if d < 0 {
			res.Z = -res.Z
		}
	}
	return res
}

// upperTail returns P(Z > z) for a standard normal Z.
func upperTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// rankSum merges two sorted samples and returns the sum of the ranks of xs
// in the combined sample (ties get average ranks) and Σ(t³ − t) over the
// groups of t tied values.
func rankSum(xs, ys []float64) (sumX, tieTerm float64) {
	i, j := 0, 0
	rank := 1.0 // rank of the next value in the merged order
	for i < len(xs) || j < len(ys) {
		var v float64
		switch {
		case j == len(ys) || (i < len(xs) && xs[i] <= ys[j]):
			v = xs[i]
		default:
			v = ys[j]
		}
		cx, cy := 0, 0
		for i < len(xs) && xs[i] == v {
			i++
			cx++
		}
		for j < len(ys) && ys[j] == v {
			j++
			cy++
		}
		t := float64(cx + cy)
		avg := rank + (t-1)/2
		sumX += avg * float64(cx)
		if t > 1 {
			tieTerm += t*t*t - t
		}
		rank += t
	}
	return sumX, tieTerm
}

// exactPValue returns the exact p-value of U = u for samples of sizes n1
// and n2 without ties.
func exactPValue(n1, n2 int, u float64, alt Alternative) float64 {
	counts := uDistribution(n1, n2)
	var total float64
	for _, c := range counts {
		total += c
	}
	k := int(math.Round(u))
	le, ge := 0.0, 0.0 // P(U <= k), P(U >= k)
	for v, c := range counts {
		if v <= k {
			le += c
		}
		if v >= k {
			ge += c
		}
	}
	le, ge = le/total, ge/total
	switch alt {
	case Greater:
		return ge
	case Less:
		return le
	}
	return min(1, 2*min(le, ge))
}

// uDistribution returns, for each u in 0..n1*n2, the number of
// arrangements of n1 x-values and n2 y-values (no ties) whose statistic is
// u, from the recurrence f(i, j, u) = f(i−1, j, u−j) + f(i, j−1, u): the
// largest value is either an x (beating all j y-values) or a y.
func uDistribution(n1, n2 int) []float64 {
	// prev[j] holds f(i−1, j, ·); cur[j] holds f(i, j, ·).
	prev := make([][]float64, n2+1)
	for j := range prev {
		prev[j] = []float64{1} // f(0, j, 0) = 1
	}
	for i := 1; i <= n1; i++ {
		cur := make([][]float64, n2+1)
		cur[0] = []float64{1} // f(i, 0, 0) = 1
		for j := 1; j <= n2; j++ {
			f := make([]float64, i*j+1)
			for u, c := range prev[j] { // x is largest: adds j
				f[u+j] += c
			}
			for u, c := range cur[j-1] { // y is largest
				f[u] += c
			}
			cur[j] = f
		}
		prev = cur
	}
	return prev[n2]
}

// FisherExact returns the one-sided p-value of Fisher's exact test that
// the event rate of the second group (events2 of total2) is greater than
// that of the first (events1 of total1): the probability, with both groups
// drawn from one rate and the margins fixed, of at least events2 events in
// the second group.
func FisherExact(events1, total1, events2, total2 int64) (float64, error) {
	switch {
	case events1 < 0 || events2 < 0 || total1 < 0 || total2 < 0:
		return 0, fmt.Errorf("stats: FisherExact: negative count (%d/%d, %d/%d)", events1, total1, events2, total2)
	case events1 > total1:
		return 0, fmt.Errorf("stats: FisherExact: first group has %d events in %d trials", events1, total1)
	case events2 > total2:
		return 0, fmt.Errorf("stats: FisherExact: second group has %d events in %d trials", events2, total2)
	}
	n := total1 + total2
	k := events1 + events2 // events in all
	if n == 0 || k == 0 || k == n {
		return 1, nil
	}
	logP := func(x int64) float64 { // log P(X = x) for X ~ Hypergeometric(n, k, total2)
		return lchoose(k, x) + lchoose(n-k, total2-x) - lchoose(n, total2)
	}
	hi := min(k, total2)
	var p float64
	peak := math.Inf(-1)
	for x := events2; x <= hi; x++ {
		lp := logP(x)
		p += math.Exp(lp)
		peak = max(peak, lp)
		if lp < peak-40 { // terms past the mode fall geometrically; the rest is < e^-40 relative
			break
		}
	}
	return min(1, p), nil
}

// lchoose returns log C(n, k).
func lchoose(n, k int64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

// Quantile returns the q-quantile of sorted (ascending, non-empty) by
// linear interpolation between order statistics (R's type 7, the default
// of R and NumPy).
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// QuantileInterval returns a distribution-free confidence interval for
// the q-quantile of the population sorted (ascending, non-empty) was drawn
// from: the order statistics whose ranks bound a binomial(n, q) count at
// the given confidence (normal approximation, widened outwards).
func QuantileInterval(sorted []float64, q, confidence float64) (lo, hi float64) {
	n := float64(len(sorted))
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	z := normalQuantile(1 - (1-confidence)/2)
	half := z * math.Sqrt(n*q*(1-q))
	l := int(math.Floor(n*q-half)) - 1 // 0-based index
	u := int(math.Ceil(n*q+half)) - 1 + 1
	l = min(max(l, 0), len(sorted)-1)
	u = min(max(u, 0), len(sorted)-1)
	return sorted[l], sorted[u]
}

// normalQuantile returns z with P(Z < z) = p for a standard normal Z.
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
