package testchild_test

import (
	"testing"

	"github.com/updraft-dev/updraft/internal/testchild"
)

func TestMain(m *testing.M) { testchild.Main(m) }
