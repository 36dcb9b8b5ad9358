package testchild

import (
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// ProcCPUTime returns the user plus system CPU time of process pid as the
// kernel accounts it in /proc/<pid>/stat (in clock ticks, usually 10ms).
// It fails the test if the file cannot be read.
func ProcCPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	p, err := procfs.NewProc(pid)
	if err != nil {
		t.Fatalf("testchild: /proc/%d: %v", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		t.Fatalf("testchild: /proc/%d/stat: %v", pid, err)
	}
	return time.Duration(st.CPUTime() * float64(time.Second))
}

// ResidentBytes returns the resident set size of process pid, VmRSS in
// /proc/<pid>/status. It fails the test if the file cannot be read.
func ResidentBytes(t testing.TB, pid int) int64 {
	t.Helper()
	p, err := procfs.NewProc(pid)
	if err != nil {
		t.Fatalf("testchild: /proc/%d: %v", pid, err)
	}
	st, err := p.NewStatus()
	if err != nil {
		t.Fatalf("testchild: /proc/%d/status: %v", pid, err)
	}
	return int64(st.VmRSS)
}
