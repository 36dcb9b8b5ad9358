package trace

import (
	"math"
	"slices"

	"github.com/updraft-dev/updraft/hal"
)

// ResourceScore accumulates the scored points of one resource: how much
// was reserved beyond use (gross slack: an under-reservation at one point
// does not offset an over-reservation at another), how often use exceeded
// the reservation, and by how much.
type ResourceScore struct {
	Points     int     // scored points
	Violations int     // points where use exceeded the reservation
	Used       float64 // Σ use
	Over       float64 // Σ max(reserved − used, 0): over-reservation
	Short      float64 // Σ max(used − reserved, 0): under-reservation
	Overrun    float64 // Σ (used − reserved)/used over the violating points
}

func (r *ResourceScore) add(used, reserved float64) {
	r.Points++
	r.Used += used
	if reserved >= used {
		r.Over += reserved - used
		return
	}
	r.Violations++
	r.Short += used - reserved
	r.Overrun += (used - reserved) / used
}

// Add accumulates o into r.
func (r *ResourceScore) Add(o ResourceScore) {
	r.Points += o.Points
	r.Violations += o.Violations
	r.Used += o.Used
	r.Over += o.Over
	r.Short += o.Short
	r.Overrun += o.Overrun
}

// Slack is the gross slack: over-reservation over use (0.25 = a quarter
// more reserved than used, counting only points where the reservation
// covered use); NaN when nothing was used.
func (r ResourceScore) Slack() float64 { return ratio(r.Over, r.Used) }

// ViolationRate is the share of scored points where use exceeded the
// reservation; NaN with no points.
func (r ResourceScore) ViolationRate() float64 {
	return ratio(float64(r.Violations), float64(r.Points))
}

// MeanOverrun is the mean, over violating points, of the share of use the
// reservation did not cover ((used − reserved)/used); NaN with no
// violation.
func (r ResourceScore) MeanOverrun() float64 { return ratio(r.Overrun, float64(r.Violations)) }

// ShortShare is the under-reservation over use: the share of all use that
// was not reserved; NaN when nothing was used.
func (r ResourceScore) ShortShare() float64 { return ratio(r.Short, r.Used) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Score is the outcome of a replay, per resource.
type Score map[hal.Resource]ResourceScore

// Add accumulates o into s.
func (s Score) Add(o Score) {
	for res, r := range o {
		t := s[res]
		t.Add(r)
		s[res] = t
	}
}

// Resources returns the resources scored, sorted.
func (s Score) Resources() []hal.Resource {
	out := make([]hal.Resource, 0, len(s))
	for r := range s {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Slack is the mean over resources of each resource's gross slack
// (resources have different units, so their sums are not added).
func (s Score) Slack() float64 {
	sum, n := 0.0, 0
	for _, r := range s {
		if sl := r.Slack(); !math.IsNaN(sl) {
			sum += sl
			n++
		}
	}
	return ratio(sum, float64(n))
}

// ViolationRate is the share of violating points over every resource's
// scored points.
func (s Score) ViolationRate() float64 {
	v, p := 0, 0
	for _, r := range s {
		v += r.Violations
		p += r.Points
	}
	return ratio(float64(v), float64(p))
}
