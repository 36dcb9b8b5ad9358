package main

import (
	"fmt"
	"math"

	"github.com/updraft-dev/updraft/hal"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotCurves draws, per resource, each method's curve of violations
// against gross slack into prefix-<resource>.png.
func plotCurves(curves []curve, resources []hal.Resource, prefix string) error {
	for _, r := range resources {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: violations against gross slack", r)
		p.X.Label.Text = "gross slack (% of use)"
		p.Y.Label.Text = "violations (% of points)"
		var lines []any
		for _, c := range curves {
			var xys plotter.XYs
			for _, sc := range c.scores {
				x, y := 100*sc[r].Slack(), 100*sc[r].ViolationRate()
				if !math.IsNaN(x) && !math.IsNaN(y) {
					xys = append(xys, plotter.XY{X: x, Y: y})
				}
			}
			lines = append(lines, c.method, xys)
		}
		if err := plotutil.AddLinePoints(p, lines...); err != nil {
			return fmt.Errorf("plot %s: %w", r, err)
		}
		p.Legend.Top = true
		file := fmt.Sprintf("%s-%s.png", prefix, r)
		if err := p.Save(7*vg.Inch, 5*vg.Inch, file); err != nil {
			return fmt.Errorf("plot %s: %w", file, err)
		}
	}
	return nil
}
