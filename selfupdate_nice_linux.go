package updraft

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
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
	self, err := procfs.Self()
	if err != nil {
		return false
	}
	st, err := self.NewStatus()
	return err == nil && st.CapEff&(1<<23) != 0
}

// ownNice is this process's nice value: its main thread's, whose thread
// id is the process id (with 0, getpriority would read the calling
// thread's, which need not be the same).
func ownNice() (int, error) {
	// The system call returns 20-nice, to stay non-negative.
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, os.Getpid())
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
