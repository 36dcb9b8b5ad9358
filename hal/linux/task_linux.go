package linux

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/cgroups"
)

// task is a process (tgid == pid) or a thread of process tgid.
type task struct {
	pid, tgid int
}

// procsFile is the cgroup file that moves the task: cgroup.procs moves a
// whole process, tasks (cgroup v1 only) one thread.
func (t task) procsFile() string {
	if t.pid == t.tgid {
		return "cgroup.procs"
	}
	return "tasks"
}

// task looks pid up in procfs; the error wraps [ErrNoProcess] when it does
// not exist.
func (d *Device) task(pid int) (task, error) {
	p, err := d.proc.Proc(pid)
	if err != nil {
		return task{}, fmt.Errorf("%w: %w", ErrNoProcess, err)
	}
	st, err := p.NewStatus()
	if err != nil {
		if isNotExist(err) {
			return task{}, fmt.Errorf("%w: %w", ErrNoProcess, err)
		}
		return task{}, err
	}
	return task{pid: pid, tgid: int(st.TGID)}, nil
}

// taskCgroups returns the cgroup t is in, per v1 controller, or under the
// key "" for the v2 hierarchy.
func (d *Device) taskCgroups(t task) (map[string]string, error) {
	p := filepath.Join(d.cfg.Proc, strconv.Itoa(t.tgid), "task", strconv.Itoa(t.pid), "cgroup")
	m, err := cgroups.ParseCgroupFile(p)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("%w: %w", ErrNoProcess, err)
		}
		return nil, err
	}
	return m, nil
}
