package validate

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on; check them with errors.Is.
var (
	// ErrNoChecks is returned by [Suite.Validate] when the suite has no
	// checks and Options.AllowNoChecks is false: an update is never called
	// validated without evidence unless the host opts in.
	ErrNoChecks = errors.New("validate: no checks configured")
	// ErrDuplicateCheck is returned by [New] when two checks share a name.
	ErrDuplicateCheck = errors.New("validate: duplicate check name")
	// ErrCheckFailed is wrapped by the error of every failed check in
	// [Report.Err].
	ErrCheckFailed = errors.New("validate: check failed")
	// ErrCheckMarginal is wrapped by the error of every marginal check in
	// [Report.Err].
	ErrCheckMarginal = errors.New("validate: check marginal")
	// ErrTimeout is wrapped by Result.Err when an attempt ran out of its
	// per-check time.
	ErrTimeout = errors.New("validate: check timed out")
	// ErrNoBaseline is wrapped by Result.Err when a comparison ran before
	// its baseline was recorded.
	ErrNoBaseline = errors.New("validate: no baseline recorded")
	// ErrTooFewSamples is wrapped by Result.Err when a comparison had too
	// few samples to judge; the verdict is Marginal.
	ErrTooFewSamples = errors.New("validate: too few samples")
)

// CheckError is the error [Report.Err] gives for one check that did not
// pass. It unwraps to [ErrCheckFailed] or [ErrCheckMarginal] and to the
// check's own Result.Err, so errors.Is works on both.
type CheckError struct {
	Result Result
}

// Error names the check, its verdict, its error and its evidence.
func (e *CheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "validate: check %q: %s", e.Result.Check, e.Result.Verdict)
	if e.Result.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Result.Err)
	}
	if len(e.Result.Evidence) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(e.Result.Evidence, "; "))
	}
	return b.String()
}

// Unwrap returns the verdict's sentinel and the check's error.
func (e *CheckError) Unwrap() []error {
	sentinel := ErrCheckFailed
	if e.Result.Verdict == Marginal {
		sentinel = ErrCheckMarginal
	}
	if e.Result.Err == nil {
		return []error{sentinel}
	}
	return []error{sentinel, e.Result.Err}
}
