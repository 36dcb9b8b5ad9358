package validate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Step is one named step of a smoke test.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// Smoke is a [Check] running a list of named steps in order ("create
// session", "forward packet", "tear down"); it stops at the first step
// that fails, since later steps usually depend on it. Evidence lists every
// step's outcome and time; Score is the fraction of steps that passed.
// Safe for concurrent use if the steps are.
type Smoke struct {
	name  string
	steps []Step
}

var _ Check = (*Smoke)(nil)

// NewSmoke returns a smoke test of steps. It rejects an empty name, no
// steps, and steps with an empty or duplicate name or a nil function.
func NewSmoke(name string, steps ...Step) (*Smoke, error) {
	if name == "" {
		return nil, errors.New("validate: NewSmoke: empty name")
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("validate: NewSmoke %q: no steps", name)
	}
	seen := map[string]bool{}
	for i, s := range steps {
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("validate: NewSmoke %q: step %d has an empty name", name, i)
		case seen[s.Name]:
			return nil, fmt.Errorf("validate: NewSmoke %q: duplicate step name %q", name, s.Name)
		case s.Run == nil:
			return nil, fmt.Errorf("validate: NewSmoke %q: step %q has a nil function", name, s.Name)
		}
		seen[s.Name] = true
	}
	return &Smoke{name: name, steps: append([]Step(nil), steps...)}, nil
}

// Name returns the smoke test's name.
func (s *Smoke) Name() string { return s.name }

// Run runs the steps in order until one fails or ctx ends.
func (s *Smoke) Run(ctx context.Context) Result {
	res := Result{Check: s.name}
	passed := 0
	for i, step := range s.steps {
		err := ctx.Err()
		start := time.Now()
		if err == nil {
			err = step.Run(ctx)
		}
		took := roundDuration(time.Since(start))
		if err != nil {
			res.Evidence = append(res.Evidence, fmt.Sprintf("step %d %q: failed after %s: %v", i+1, step.Name, took, err))
			for j, rest := range s.steps[i+1:] {
				res.Evidence = append(res.Evidence, fmt.Sprintf("step %d %q: not run", i+j+2, rest.Name))
			}
			res.Verdict = Fail
			res.Score = float64(passed) / float64(len(s.steps))
			res.Err = fmt.Errorf("validate: smoke %q: step %q: %w", s.name, step.Name, err)
			return res
		}
		passed++
		res.Evidence = append(res.Evidence, fmt.Sprintf("step %d %q: ok in %s", i+1, step.Name, took))
	}
	res.Verdict, res.Score = Pass, 1
	return res
}
