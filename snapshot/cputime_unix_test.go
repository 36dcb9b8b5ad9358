//go:build unix

package snapshot

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used so far, user and system:
// what a benchmark reports beside wall time, since on shared cores the wall
// time of a CPU-bound operation swings with the neighbours' load.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
