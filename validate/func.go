package validate

import (
	"context"
	"errors"
	"fmt"
)

// funcCheck is the check [Func] returns.
type funcCheck struct {
	name string
	f    func(ctx context.Context) error
}

// Func returns a check that passes when f returns nil and fails with f's
// error otherwise: the simplest way to turn a host's own test of a function
// ("can I still look up a route?") into evidence. A nil f gives a check that
// always fails, saying so.
func Func(name string, f func(ctx context.Context) error) Check {
	return &funcCheck{name: name, f: f}
}

// Name returns the name given to Func.
func (c *funcCheck) Name() string { return c.name }

// Run calls the function.
func (c *funcCheck) Run(ctx context.Context) Result {
	if c.f == nil {
		return Result{Check: c.name, Verdict: Fail, Err: errors.New("validate: Func check has a nil function")}
	}
	if err := c.f(ctx); err != nil {
		return Result{Check: c.name, Verdict: Fail, Score: 0, Err: fmt.Errorf("validate: function returned: %w", err),
			Evidence: []string{"function returned an error"}}
	}
	return Result{Check: c.name, Verdict: Pass, Score: 1, Evidence: []string{"function returned nil"}}
}
