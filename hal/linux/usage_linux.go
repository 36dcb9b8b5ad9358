package linux

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/procfs"

	"github.com/updraft-dev/updraft/hal"
)

// Usage returns what function uses now: CPU in cores, averaged over
// [UsageWindow], and memory in bytes. A function bound to a cgroup is
// measured by its cgroup (cpuacct and memory on v1, cpu.stat and
// memory.current on v2), the whole cgroup's use when functions share it;
// one bound to PIDs by its processes and threads in
// procfs (not by processes they forked). On cgroup v1 a cgroup's memory
// counts only what its members allocated since joining it. Usage blocks for UsageWindow or
// until ctx ends. An unbound function gives an error wrapping
// [hal.ErrUnknownFunction].
func (d *Device) Usage(ctx context.Context, function string) (hal.Vector, error) {
	b, ok := d.bindings[function]
	if !ok {
		return nil, fmt.Errorf("linux: usage of %q: %w", function, hal.ErrUnknownFunction)
	}
	first, err := d.sample(b)
	if err != nil {
		return nil, fmt.Errorf("linux: usage of %q: %w", function, err)
	}
	t := time.NewTimer(UsageWindow)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("linux: usage of %q: %w", function, ctx.Err())
	case <-t.C:
	}
	second, err := d.sample(b)
	if err != nil {
		return nil, fmt.Errorf("linux: usage of %q: %w", function, err)
	}
	elapsed := second.at.Sub(first.at).Seconds()
	return hal.Vector{
		hal.CPU:    max(0, (second.cpuSeconds-first.cpuSeconds)/elapsed),
		hal.Memory: second.memoryBytes,
	}, nil
}

// usageSample is a function's cumulative CPU time and current memory.
type usageSample struct {
	at          time.Time
	cpuSeconds  float64
	memoryBytes float64
}

func (d *Device) sample(b Binding) (usageSample, error) {
	if b.Cgroup != "" {
		return d.sampleCgroup(b.Cgroup)
	}
	return d.sampleTasks(b.PIDs)
}

// sampleCgroup reads a cgroup's CPU time and memory usage through
// internal/cgroupfs.
func (d *Device) sampleCgroup(rel string) (usageSample, error) {
	s := usageSample{at: time.Now()}
	l := d.layout.fs()
	cpu, err := l.CPUUsage(rel)
	if err != nil {
		return s, err
	}
	mem, err := l.MemoryUsage(rel)
	if err != nil {
		return s, err
	}
	s.cpuSeconds, s.memoryBytes = cpu.Seconds(), float64(mem)
	return s, nil
}

// sampleTasks sums the CPU time of the bound tasks and the resident memory
// of their processes (counted once per process).
func (d *Device) sampleTasks(pids []int) (usageSample, error) {
	s := usageSample{at: time.Now()}
	counted := map[int]bool{}
	for _, pid := range pids {
		t, err := d.task(pid)
		if err != nil {
			return s, fmt.Errorf("pid %d: %w", pid, err)
		}
		p, err := d.taskProc(t)
		if err != nil {
			return s, fmt.Errorf("pid %d: %w: %w", pid, ErrNoProcess, err)
		}
		st, err := p.Stat()
		if err != nil {
			return s, fmt.Errorf("pid %d: %w", pid, err)
		}
		s.cpuSeconds += st.CPUTime()
		if !counted[t.tgid] {
			counted[t.tgid] = true
			s.memoryBytes += float64(st.ResidentMemory())
		}
	}
	return s, nil
}

// taskProc returns the procfs view of t: the whole process for a process,
// the thread alone (under /proc/<tgid>/task) for a thread, since
// /proc/<tid> reports the thread's whole process.
func (d *Device) taskProc(t task) (procfs.Proc, error) {
	if t.pid == t.tgid {
		return d.proc.Proc(t.pid)
	}
	fs, err := procfs.NewFS(filepath.Join(d.cfg.Proc, strconv.Itoa(t.tgid), "task"))
	if err != nil {
		return procfs.Proc{}, err
	}
	return fs.Proc(t.pid)
}
