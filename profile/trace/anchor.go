package trace

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// KnownMeanCurve is the anchor a causal forecaster of one resource is
// judged against: the trade-off between gross slack and violations of a
// reservation that is told, before each window, the mean use of that very
// window (which no forecaster can know), and adds to it the margin that
// suits each series best in hindsight.
//
// The margin is either a multiple of the window's mean (×1 to ×4 in steps
// of 0.01) or an addition in units of the series' mean use over its scored
// points (0 to 4 in steps of 0.01), whichever gives the series the lower
// cost: over-reservation in those units plus a price per violating point.
// Each point of the curve is one price (from 0.1 to 10,000, 64 prices
// spread evenly on a log scale), the margins chosen per series at that
// price, and the figures pooled over every series as [Score] pools them.
// Windows are aligned and warmed up as [Replay] does.
//
// A point on the curve is on the lower convex hull of every pair of
// (violations, slack) these margins can reach together, so at a violation
// rate between two points a line between them bounds what this
// clairvoyant reservation can do ([Curve.SlackAt]). It is an anchor, not
// a limit: a forecaster that sees the shape of a window's use coming
// could do better than one that knows only its mean. It returns nil when
// the series used none of r.
func KnownMeanCurve(series []Series, r hal.Resource, opts ReplayOptions) Curve {
	opts = opts.withDefaults()
	margins := knownMeanMargins()
	// One result per margin and series: what it over-reserved (in the
	// resource's units and in the series' means) and how often it fell short.
	type result struct {
		over, overMeans float64
		violations      int
	}
	var (
		perSeries [][]result
		used      float64
		points    int
	)
	for _, s := range series {
		windows := scoredWindows(s, r, opts)
		var n int
		var sum float64
		for _, w := range windows {
			for _, x := range w {
				sum += x
				n++
			}
		}
		points += n
		if n == 0 || sum <= 0 {
			continue // nothing used: every margin reserves 0 and covers it
		}
		mean := sum / float64(n)
		used += sum
		results := make([]result, len(margins))
		for _, w := range windows {
			wm := 0.0
			for _, x := range w {
				wm += x
			}
			wm /= float64(len(w))
			for i, m := range margins {
				reserved := wm*m.factor + m.add*mean
				for _, x := range w {
					if x > reserved {
						results[i].violations++
					} else {
						results[i].over += reserved - x
					}
				}
			}
		}
		for i := range results {
			results[i].overMeans = results[i].over / mean
		}
		perSeries = append(perSeries, results)
	}
	if used == 0 {
		return nil
	}
	var curve Curve
	for k := range knownMeanPrices {
		price := 0.1 * math.Pow(1e5, float64(k)/float64(knownMeanPrices-1))
		cost := func(r result) float64 { return r.overMeans + price*float64(r.violations) }
		var over float64
		var violations int
		for _, results := range perSeries {
			best := 0
			for i, res := range results {
				if cost(res) < cost(results[best]) {
					best = i
				}
			}
			over += results[best].over
			violations += results[best].violations
		}
		curve = append(curve, CurvePoint{Setting: price, Slack: over / used, Violations: float64(violations) / float64(points)})
	}
	return curve
}

// knownMeanPrices is how many prices KnownMeanCurve traces.
const knownMeanPrices = 64

type knownMeanMargin struct{ factor, add float64 }

func knownMeanMargins() []knownMeanMargin {
	var out []knownMeanMargin
	for i := 0; i <= 300; i++ {
		out = append(out, knownMeanMargin{factor: 1 + float64(i)/100})
	}
	for i := 1; i <= 400; i++ {
		out = append(out, knownMeanMargin{factor: 1, add: float64(i) / 100})
	}
	return out
}

// scoredWindows returns the use of r at the points of each window of s
// that Replay would score, windows with no such point left out.
func scoredWindows(s Series, r hal.Resource, opts ReplayOptions) [][]float64 {
	if len(s.Points) == 0 {
		return nil
	}
	start := s.Points[0].Time
	var out [][]float64
	last := time.Duration(-1)
	for _, p := range s.Points {
		x, ok := p.Usage[r]
		k := p.Time.Sub(start) / opts.Window
		if !ok || k*opts.Window < opts.Warmup {
			continue
		}
		if k != last {
			out = append(out, nil)
			last = k
		}
		out[len(out)-1] = append(out[len(out)-1], x)
	}
	return out
}

// CurvePoint is one setting of a method and the pooled figures it gave.
type CurvePoint struct {
	Setting    float64 // the margin, cost or price that gave it
	Slack      float64 // gross slack, as [ResourceScore.Slack]
	Violations float64 // violation rate, as [ResourceScore.ViolationRate]
}

// Curve is a trade-off between slack and violations, one point per
// setting.
type Curve []CurvePoint

// SlackAt returns the least slack the curve reaches at violations no
// higher than v, interpolating linearly between the two points around v
// (the points are taken to lie on a convex curve); false when every point
// violates more than v.
func (c Curve) SlackAt(v float64) (float64, bool) {
	pts := slices.Clone(c)
	slices.SortFunc(pts, func(a, b CurvePoint) int {
		if a.Violations != b.Violations {
			if a.Violations < b.Violations {
				return -1
			}
			return 1
		}
		if a.Slack < b.Slack {
			return -1
		}
		if a.Slack > b.Slack {
			return 1
		}
		return 0
	})
	best, ok := math.Inf(1), false
	for i, p := range pts {
		if p.Violations > v {
			if i > 0 && ok {
				q := pts[i-1]
				t := (v - q.Violations) / (p.Violations - q.Violations)
				best = math.Min(best, q.Slack+t*(p.Slack-q.Slack))
			}
			break
		}
		best, ok = math.Min(best, p.Slack), true
	}
	return best, ok
}

// Anchor sets an aim against [KnownMeanCurve]: the slack that a
// reservation knowing each window's mean in advance needs at the
// reference's violation rate, beside the slack the aim allows there.
type Anchor struct {
	Aim   AimResult // the aim, whose Reference gives the violation rate to read the curve at
	Curve Curve     // KnownMeanCurve of the same series and resource
}

// KnownMeanSlack returns the known-mean reservation's slack at the
// reference's violation rate ([Curve.SlackAt]); false when it cannot
// violate that little.
func (a Anchor) KnownMeanSlack() (float64, bool) {
	return a.Curve.SlackAt(a.Aim.Reference.ViolationRate())
}

// String describes the anchor in one line.
func (a Anchor) String() string {
	v := a.Aim.Reference.ViolationRate()
	allowed := AimSlackShare * a.Aim.Reference.Slack()
	s, ok := a.KnownMeanSlack()
	if !ok {
		return fmt.Sprintf("%s: knowing each window's mean in advance cannot violate as little as the reference's %.2f%%", a.Aim.Resource, 100*v)
	}
	verdict := "within what the aim allows"
	if s > allowed {
		verdict = "more than the aim allows"
	}
	return fmt.Sprintf("%s: knowing each window's mean in advance, with each series' best margin in hindsight, needs %.1f%% slack at the reference's %.2f%% violations: %s (%.1f%%)",
		a.Aim.Resource, 100*s, 100*v, verdict, 100*allowed)
}

// Anchors returns, for each aim, its anchor on series (the series the
// aims were evaluated on, replayed with opts).
func Anchors(series []Series, aims []AimResult, opts ReplayOptions) []Anchor {
	out := make([]Anchor, 0, len(aims))
	for _, a := range aims {
		out = append(out, Anchor{Aim: a, Curve: KnownMeanCurve(series, a.Resource, opts)})
	}
	return out
}
