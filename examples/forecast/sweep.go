package main

import (
	"time"

	"context"
	"fmt"
	"io"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

// curve is one method's trade-off: a score per setting of its margin or
// cost, from the most aggressive setting to the most cautious.
type curve struct {
	method string
	labels []string
	scores []trace.Score
}

// Settings of each method's margin or cost that the sweep visits. Zero
// margins are zero: the VPA's first point has no safety margin, the
// window rule's no factor above 1.
var (
	costFactors     = []float64{0.1, 0.25, 0.5, 1, 2, 4, 8}
	memoryHeadrooms = []float64{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3}
	vpaMargins      = []float64{0, 0.05, 0.1, 0.15, 0.25, 0.5, 1}
	windowFactors   = []float64{1, 1.1, 1.2, 1.35, 1.5, 2, 3}
)

// sweep evaluates every setting of every method on series.
func sweep(ctx context.Context, series []trace.Series, c config) ([]curve, error) {
	curves := []curve{{method: "model (cost ×f, memory headroom h)"}, {method: "vpa (margin)"}, {method: "p95-2h (factor)"}}
	var methods []trace.Method
	for i, f := range costFactors {
		h := memoryHeadrooms[i]
		opts := c.model
		opts.Analyzer.OverrunCost = map[hal.Resource]float64{hal.CPU: f * c.cpuCostFlag, hal.Memory: f * c.memoryCostFlag}
		opts.Analyzer.Headroom = map[hal.Resource]float64{hal.Memory: noneIfZero(h)}
		label := fmt.Sprintf("f=%g h=%g", f, h)
		methods = append(methods, trace.ModelMethod("model "+label, opts))
		curves[0].labels = append(curves[0].labels, label)
	}
	for _, m := range vpaMargins {
		cfg := c.vpa
		cfg.SafetyMargin = m
		label := fmt.Sprintf("margin=%g", m)
		methods = append(methods, trace.VPAMethod("vpa "+label, cfg))
		curves[1].labels = append(curves[1].labels, label)
	}
	for _, f := range windowFactors {
		cfg := c.window
		cfg.Factor = f
		label := fmt.Sprintf("×%g", f)
		methods = append(methods, trace.WindowMethod("window "+label, cfg))
		curves[2].labels = append(curves[2].labels, label)
	}
	ev, err := trace.Evaluate(ctx, series, methods, c.replay)
	if err != nil {
		return nil, fmt.Errorf("forecast: sweep: %w", err)
	}
	m := 0
	for i := range curves {
		for range curves[i].labels {
			curves[i].scores = append(curves[i].scores, ev.Total(m))
			m++
		}
	}
	return curves, nil
}

// noneIfZero maps a headroom of 0 to profile.Options' "none" (negative).
func noneIfZero(h float64) float64 {
	if h == 0 {
		return -1
	}
	return h
}

func printCurves(out io.Writer, curves []curve, resources []hal.Resource) {
	fmt.Fprintln(out, "trade-off curves (gross slack, violations), pooled over every series:")
	for _, r := range resources {
		for _, c := range curves {
			fmt.Fprintf(out, "  %-6s %s:", r, c.method)
			for i, sc := range c.scores {
				fmt.Fprintf(out, " [%s %s %s]", c.labels[i], pct(sc[r].Slack(), 1), pct(sc[r].ViolationRate(), 2))
			}
			fmt.Fprintln(out)
		}
	}
}

// spanNoneIfZero maps a peak span of 0 (none, on the command line) to the
// negative value profile.Options reads as none.
func spanNoneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// printModelAtReference prints, per aim, the model's slack on its own
// curve at the reference's violation rate (interpolated between the two
// settings around it), so the model can be set beside the aim and its
// anchor at equal violations.
func printModelAtReference(out io.Writer, model curve, aims []trace.AimResult) {
	fmt.Fprintln(out, "the model's curve at the reference's violation rate:")
	for _, a := range aims {
		var c trace.Curve
		for i, sc := range model.scores {
			c = append(c, trace.CurvePoint{Setting: float64(i), Slack: sc[a.Resource].Slack(), Violations: sc[a.Resource].ViolationRate()})
		}
		v := a.Reference.ViolationRate()
		if s, ok := c.SlackAt(v); ok {
			fmt.Fprintf(out, "  %s: %s slack at %s violations (aim: at most %s)\n", a.Resource, pct(s, 1), pct(v, 2), pct(trace.AimSlackShare*a.Reference.Slack(), 1))
		} else {
			fmt.Fprintf(out, "  %s: no setting violates as little as %s\n", a.Resource, pct(v, 2))
		}
	}
}
