package validate

import "fmt"

// Verdict is the outcome of one check or of a whole validation, from best to
// worst: [Pass], [Marginal], [Fail]. The zero value is Pass, so code that
// builds a [Result] by hand must set the verdict it means; the [Suite] never
// reports Pass for a check that returned an error.
type Verdict int

const (
	// Pass means the evidence says the update works as well as before.
	Pass Verdict = iota
	// Marginal means the evidence is too weak to call it either way (too few
	// samples, no baseline) or the update is worse within a tolerated band.
	// The host's policy decides whether to roll back.
	Marginal
	// Fail means the evidence says the update does not work: roll back.
	Fail
)

// String returns "pass", "marginal" or "fail".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Marginal:
		return "marginal"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// valid reports whether v is one of the three defined verdicts.
func (v Verdict) valid() bool { return v >= Pass && v <= Fail }

// Worst returns the worse of a and b (Fail over Marginal over Pass). An
// undefined verdict counts as Fail.
func Worst(a, b Verdict) Verdict {
	if !a.valid() || !b.valid() {
		return Fail
	}
	return max(a, b)
}
