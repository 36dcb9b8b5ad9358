package trace

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/updraft-dev/updraft/hal"
)

// Method is a forecaster under evaluation: a name and a constructor that
// makes a fresh one, with nothing learnt, for each series.
type Method struct {
	Name string
	New  func() (Forecaster, error)
}

// Evaluation holds the scores of several methods on several series, each
// method having replayed every series from scratch.
type Evaluation struct {
	Methods []string       // method names, in the order given to Evaluate
	Series  []SeriesResult // in the order of the series given
}

// SeriesResult is every method's score on one series.
type SeriesResult struct {
	Name   string
	Scores []Score // one per method, in Evaluation.Methods order
}

// Evaluate replays every series through a fresh forecaster of every
// method, running up to GOMAXPROCS replays at once. Results do not depend
// on the scheduling. It returns the first error (naming the method and
// series) or ctx.Err().
func Evaluate(ctx context.Context, series []Series, methods []Method, opts ReplayOptions) (*Evaluation, error) {
	ev := &Evaluation{Series: make([]SeriesResult, len(series))}
	for _, m := range methods {
		ev.Methods = append(ev.Methods, m.Name)
	}
	for i, s := range series {
		ev.Series[i] = SeriesResult{Name: s.Name, Scores: make([]Score, len(methods))}
	}
	type job struct{ s, m int }
	jobs := make(chan job)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	workers := min(runtime.GOMAXPROCS(0), max(len(series)*len(methods), 1))
	for range workers {
		wg.Go(func() { // each worker owns the slots of the jobs it takes
			for j := range jobs {
				f, err := methods[j.m].New()
				if err != nil {
					fail(fmt.Errorf("trace: method %s: %w", methods[j.m].Name, err))
					continue
				}
				sc, err := Replay(ctx, series[j.s], f, opts)
				if err != nil {
					fail(fmt.Errorf("trace: method %s: %w", methods[j.m].Name, err))
					continue
				}
				ev.Series[j.s].Scores[j.m] = sc
			}
		})
	}
feed:
	for s := range series {
		for m := range methods {
			select {
			case jobs <- job{s, m}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trace: evaluate: %w", err)
	}
	return ev, nil
}

// Method returns the index of the named method, or -1.
func (e *Evaluation) Method(name string) int { return slices.Index(e.Methods, name) }

// Total returns method m's score pooled over every series.
func (e *Evaluation) Total(m int) Score {
	out := Score{}
	for _, s := range e.Series {
		out.Add(s.Scores[m])
	}
	return out
}

// Spread summarises how one resource's score of method m varies across
// series: quantiles of the per-series gross slack and violation rate, and
// the series with the highest violation rate.
type Spread struct {
	Series                            int // series that scored the resource
	SlackP10, SlackP50, SlackP90      float64
	ViolationsP50, ViolationsP90, Max float64
	Worst                             string // the series with the highest violation rate; empty if none violated
}

// Spread returns the per-series spread of resource r under method m.
func (e *Evaluation) Spread(m int, r hal.Resource) Spread {
	var slack, viol []float64
	sp := Spread{Max: math.NaN()}
	for _, s := range e.Series {
		rs, ok := s.Scores[m][r]
		if !ok || rs.Points == 0 || rs.Used == 0 {
			continue
		}
		slack = append(slack, rs.Slack())
		v := rs.ViolationRate()
		viol = append(viol, v)
		if math.IsNaN(sp.Max) || v > sp.Max {
			sp.Max = v
			if v > 0 {
				sp.Worst = s.Name
			}
		}
	}
	sp.Series = len(slack)
	if sp.Series == 0 {
		return Spread{SlackP10: math.NaN(), SlackP50: math.NaN(), SlackP90: math.NaN(), ViolationsP50: math.NaN(), ViolationsP90: math.NaN(), Max: math.NaN()}
	}
	sp.SlackP10, sp.SlackP50, sp.SlackP90 = quantile(slack, 0.1), quantile(slack, 0.5), quantile(slack, 0.9)
	sp.ViolationsP50, sp.ViolationsP90 = quantile(viol, 0.5), quantile(viol, 0.9)
	return sp
}

// quantile returns the q-quantile of xs, interpolated linearly between
// order statistics; it reorders xs.
func quantile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	if lo >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[lo] + (pos-float64(lo))*(xs[lo+1]-xs[lo])
}

// AimSlackShare is the aim's bound on slack: the model may reserve at most
// this share of the VPA recommender's gross slack.
const AimSlackShare = 0.6

// AimResult is the aim checked for one resource: the model's violation
// rate no higher than the reference's, with at most AimSlackShare of its
// gross slack.
type AimResult struct {
	Resource         hal.Resource
	Model, Reference ResourceScore
}

// ViolationsMet reports whether the model violated no more often than the
// reference.
func (a AimResult) ViolationsMet() bool {
	return a.Model.ViolationRate() <= a.Reference.ViolationRate()
}

// SlackMet reports whether the model's gross slack is at most
// AimSlackShare of the reference's.
func (a AimResult) SlackMet() bool {
	return a.Model.Slack() <= AimSlackShare*a.Reference.Slack()
}

// Met reports whether both parts of the aim hold.
func (a AimResult) Met() bool { return a.ViolationsMet() && a.SlackMet() }

// String describes the result in one line.
func (a AimResult) String() string {
	verdict := "met"
	switch {
	case !a.ViolationsMet() && !a.SlackMet():
		verdict = "NOT met: more violations and more than 60% of the slack"
	case !a.ViolationsMet():
		verdict = "NOT met: more violations"
	case !a.SlackMet():
		verdict = "NOT met: more than 60% of the slack"
	}
	return fmt.Sprintf("%s: slack %.1f%% vs %.1f%% (%.0f%% of it), violations %.2f%% vs %.2f%%: %s",
		a.Resource, 100*a.Model.Slack(), 100*a.Reference.Slack(), 100*a.Model.Slack()/a.Reference.Slack(),
		100*a.Model.ViolationRate(), 100*a.Reference.ViolationRate(), verdict)
}

// Aim checks the aim per resource of the reference's total score: model
// and reference are method indexes.
func (e *Evaluation) Aim(model, reference int) []AimResult {
	m, r := e.Total(model), e.Total(reference)
	var out []AimResult
	for _, res := range r.Resources() {
		out = append(out, AimResult{Resource: res, Model: m[res], Reference: r[res]})
	}
	return out
}
