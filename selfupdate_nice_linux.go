package updraft

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// renice sets the nice value of every thread of process pid. Linux keeps
// a nice value per thread (setpriority on a pid reaches only the thread
// whose id it is), and a new thread takes its creator's, so the threads
// are set one by one from /proc/<pid>/task; a thread that exits meanwhile
// is skipped. It returns how many threads it set.
func renice(pid, nice int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("renice pid %d: %w", pid, err)
	}
	set := 0
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				continue
			}
			return set, fmt.Errorf("renice thread %d of pid %d to %d: %w", tid, pid, nice, err)
		}
		set++
	}
	return set, nil
}

// mayRaisePriority reports whether this process may lower a nice value
// again once it has raised it: it has CAP_SYS_NICE (bit 23 of its
// effective capabilities).
func mayRaisePriority() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<23) != 0
		}
	}
	return false
}

// ownNice is this process's nice value (its main thread's).
func ownNice() (int, error) {
	// getpriority(2) returns 20-nice to stay non-negative.
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
