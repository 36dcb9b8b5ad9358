package profile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/hal"
)

// Static is an in-memory [Profiler] for tests and examples: it answers
// every forecast from fixed demands, and judges criticality from the
// annotations alone (Auto counts as non-critical) plus the dependency
// closure. The zero value forecasts zero demand for every function.
type Static struct {
	// Demand is the P50 = P95 = P99 demand of each named function.
	Demand map[string]hal.Vector
	// Clock returns the forecast time; nil means time.Now.
	Clock func() time.Time
}

var _ Profiler = Static{}

// Forecast implements [Profiler].
func (s Static) Forecast(ctx context.Context, window time.Duration, functions []Function) (Forecast, error) {
	if err := ctx.Err(); err != nil {
		return Forecast{}, fmt.Errorf("profile: forecast: %w", err)
	}
	if window <= 0 {
		return Forecast{}, fmt.Errorf("profile: forecast: window %v is not positive", window)
	}
	byName, err := validateFunctions(functions)
	if err != nil {
		return Forecast{}, fmt.Errorf("profile: forecast: %w", err)
	}
	at := time.Now()
	if s.Clock != nil {
		at = s.Clock()
	}
	out := Forecast{Window: window, At: at}
	for _, f := range functions {
		d := s.Demand[f.Name].Clone()
		ff := FunctionForecast{Function: f.Name, P50: d, P95: d.Clone(), P99: d.Clone()}
		if _, ok := s.Demand[f.Name]; ok {
			ff.Confidence, ff.Samples = 1, 1
		}
		out.Functions = append(out.Functions, ff)
	}
	verdict := make(map[string]*FunctionForecast, len(out.Functions))
	for i := range out.Functions {
		verdict[out.Functions[i].Function] = &out.Functions[i]
	}
	for _, f := range functions {
		v := verdict[f.Name]
		switch f.Criticality {
		case Critical:
			v.Critical = true
			v.Reasons = append(v.Reasons, "annotated critical by the host")
		case NonCritical:
			v.Reasons = append(v.Reasons, "annotated non-critical by the host")
		default:
			v.Reasons = append(v.Reasons, "auto: the static profiler has no evidence; judged non-critical")
		}
	}
	propagate(functions, byName, verdict)
	slices.SortFunc(out.Functions, func(x, y FunctionForecast) int { return strings.Compare(x.Function, y.Function) })
	return out, nil
}
