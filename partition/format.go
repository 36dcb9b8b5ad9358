package partition

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// String formats the plan as a table a person can read: one line per
// allocation (guarantee and limit), the reserve, then the functions that
// do not fit, in rank order, with their reasons.
func (p Plan) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "function\tguarantee\tlimit")
	for _, a := range p.Allocations {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Function, a.Guarantee, a.Limit)
	}
	tw.Flush()
	fmt.Fprintf(&b, "reserve: %s\n", p.Reserve)
	for i, m := range p.DoesNotFit {
		fmt.Fprintf(&b, "does not fit (%d): %s, needs %s: %s\n", i+1, m.Function, m.Need, m.Reason)
	}
	return b.String()
}
