package profile_test

import (
	"testing"

	"github.com/updraft-dev/updraft/internal/testchild"
)

// TestMain lets the tests re-execute this binary as a child that burns a
// CPU or holds memory (see internal/testchild).
func TestMain(m *testing.M) { testchild.Main(m) }
