//go:build unix

package partition_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so
// far, on every thread: the planner's goroutine and the GC's workers.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
