package testchild_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/testchild"
)

// waitUntil polls cond every 20ms until it holds or within has passed,
// and reports whether it held. The polling interval is the test's
// sampling rate, not a stand-in for synchronisation: the condition is
// what is waited for.
func waitUntil(within time.Duration, cond func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// TestBurnChildUsesCPU: a burning child's CPU time grows, by its own
// account and by the kernel's in /proc.
func TestBurnChildUsesCPU(t *testing.T) {
	c := testchild.Start(t, testchild.Burn(1))
	own0, proc0 := c.CPUTime(t), testchild.ProcCPUTime(t, c.PID())
	const want = 200 * time.Millisecond
	if !waitUntil(30*time.Second, func() bool { return testchild.ProcCPUTime(t, c.PID())-proc0 >= want }) {
		t.Fatalf("burning child %d used %v of CPU per /proc in 30s, want at least %v", c.PID(), testchild.ProcCPUTime(t, c.PID())-proc0, want)
	}
	own := c.CPUTime(t) - own0
	// /proc counts in 10ms ticks; the child's own clock is exact and read
	// after /proc, so it can only be ahead, give or take a few ticks.
	if own < want-50*time.Millisecond {
		t.Errorf("burning child %d: its own CPU time grew %v while /proc's grew at least %v", c.PID(), own, want)
	}
}

// TestBurnChildThreads: a child burning n threads has a thread for each
// spinner besides its main thread.
func TestBurnChildThreads(t *testing.T) {
	const n = 2
	c := testchild.Start(t, testchild.Burn(n))
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", c.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < n+1 {
		t.Errorf("child burning %d threads has %d threads, want at least %d", n, len(tasks), n+1)
	}
}

// held is what the holding tests hold: well above an idle child's
// resident set, even under the race detector.
const held = 96 << 20

// TestHoldChildIsResident: a holding child's resident set covers what it
// holds as soon as it says ready.
func TestHoldChildIsResident(t *testing.T) {
	c := testchild.Start(t, testchild.Hold(held))
	if rss := testchild.ResidentBytes(t, c.PID()); rss < held {
		t.Errorf("child holding %d MiB has VmRSS %.1f MiB, want at least that", held>>20, float64(rss)/(1<<20))
	}
}

// TestHoldLaterWaitsForGoAhead: a holdlater child holds nothing until it
// is told to proceed, then at least what it was asked to hold.
func TestHoldLaterWaitsForGoAhead(t *testing.T) {
	c := testchild.Start(t, testchild.HoldLater(held))
	before := testchild.ResidentBytes(t, c.PID())
	if before >= held {
		t.Fatalf("holdlater child has VmRSS %.1f MiB before the go-ahead, want less than the %d MiB it will hold", float64(before)/(1<<20), held>>20)
	}
	c.Proceed(t)
	c.WaitReady(t)
	rss := testchild.ResidentBytes(t, c.PID())
	t.Logf("holdlater child: VmRSS %.1f MiB before the go-ahead, %.1f MiB after", float64(before)/(1<<20), float64(rss)/(1<<20))
	if rss < held {
		t.Errorf("holdlater child after the go-ahead has VmRSS %.1f MiB, want at least %d MiB", float64(rss)/(1<<20), held>>20)
	}
	if own := c.CPUTime(t); own <= 0 {
		t.Errorf("holdlater child answered CPU time %v, want more than 0", own)
	}
}

// TestProcReadersFailForGonePID: the /proc readers fail the test, naming
// the file, for a process that does not exist.
func TestProcReadersFailForGonePID(t *testing.T) {
	cmd := testchild.Command(t, testchild.Exit)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := cmd.Process.Pid
	for name, f := range map[string]func(testing.TB){
		"ProcCPUTime":   func(tb testing.TB) { testchild.ProcCPUTime(tb, gone) },
		"ResidentBytes": func(tb testing.TB) { testchild.ResidentBytes(tb, gone) },
	} {
		if msg := failure(t, f); msg == "" || !strings.Contains(msg, fmt.Sprintf("/proc/%d", gone)) {
			t.Errorf("%s of exited pid %d failed with %q, want a failure naming /proc/%d", name, gone, msg, gone)
		}
	}
}

// TestKillReaps: after Kill the child's PID no longer names a process.
func TestKillReaps(t *testing.T) {
	c := testchild.Start(t, testchild.Hold(0))
	c.Kill()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.PID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/proc/%d after Kill: %v, want it gone", c.PID(), err)
	}
}
