//go:build unix && !linux

package updraft

import (
	"strings"
	"testing"
)

// checkWarmedBack: WarmingNice is Linux-only; elsewhere the report must
// not claim it.
func checkWarmedBack(t *testing.T, report string, pid int) {
	t.Helper()
	if strings.Contains(report, "ran at nice") {
		t.Fatalf("the report claims a lowered priority where none can be set:\n%s", report)
	}
}
