package stats_test

import (
	"fmt"

	"github.com/updraft-dev/updraft/validate/internal/stats"
)

// The example of R's ?wilcox.test, with the same answer (W = 35,
// p-value = 0.1272).
func ExampleMannWhitney() {
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	res, err := stats.MannWhitney(x, y, stats.Greater)
	if err != nil {
		panic(err)
	}
	fmt.Printf("U = %.0f, p = %.4f, exact = %t\n", res.U, res.PValue, res.Exact)
	// Output: U = 35, p = 0.1272, exact = true
}
