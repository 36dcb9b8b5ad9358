//go:build unix

package migrate_test

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU reports the process's CPU time (user+system, all threads:
// client, server and lease alike) per operation, which other processes'
// load disturbs less than wall time. Call as defer reportCPU(b)().
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
