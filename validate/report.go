package validate

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Report is the outcome of one validation.
type Report struct {
	// Verdict is the worst verdict of any check: one failing check fails
	// the update, one marginal check makes it marginal.
	Verdict Verdict
	// Score is the lowest score of any check (the weakest evidence), or 1
	// when there are no checks.
	Score float64
	// Results holds every check's result, in registration order.
	Results []Result
}

// newReport summarises results into a report.
func newReport(results []Result) Report {
	r := Report{Verdict: Pass, Score: 1, Results: results}
	for _, res := range results {
		r.Verdict = Worst(r.Verdict, res.Verdict)
		r.Score = min(r.Score, res.Score)
	}
	return r
}

// Err returns the checks that failed or were marginal, each as a
// [*CheckError], collected in a *multierror.Error in registration order; nil
// when the verdict is Pass. Use errors.Is(err, ErrCheckFailed) to ask
// whether any check failed.
func (r Report) Err() error {
	var errs *multierror.Error
	for _, res := range r.Results {
		if res.Verdict != Pass {
			errs = multierror.Append(errs, &CheckError{Result: res})
		}
	}
	return errs.ErrorOrNil()
}

// Failed returns the results whose verdict is not Pass, in registration
// order.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Verdict != Pass {
			out = append(out, res)
		}
	}
	return out
}

// String prints the report as a table: one row per check with its verdict,
// score, attempts, duration and evidence (or error), followed by one
// indented line per further piece of evidence.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "validation: %s (score %.2f, %d checks)\n", r.Verdict, r.Score, len(r.Results))
	if len(r.Results) == 0 {
		b.WriteString("no checks ran (allowed by Options.AllowNoChecks)\n")
		return b.String()
	}
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHECK\tVERDICT\tSCORE\tATTEMPTS\tDURATION\tEVIDENCE")
	for _, res := range r.Results {
		lines := append([]string(nil), res.Evidence...)
		if res.Err != nil {
			lines = append([]string{"error: " + res.Err.Error()}, lines...)
		}
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		fmt.Fprintf(w, "%s\t%s\t%.2f\t%d\t%s\t%s\n", res.Check, res.Verdict, res.Score,
			res.Attempts, res.Duration.Round(time.Microsecond), first)
		for _, l := range lines[min(1, len(lines)):] {
			fmt.Fprintf(w, "\t\t\t\t\t%s\n", l)
		}
	}
	w.Flush()
	return b.String()
}
