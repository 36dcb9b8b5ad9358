//go:build !unix

package partition_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
