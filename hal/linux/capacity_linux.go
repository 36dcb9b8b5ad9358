package linux

import (
	"context"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"

	"github.com/updraft-dev/updraft/hal"
)

// Capacity returns the CPU cores and memory bytes this process may give
// its functions: the online CPUs and MemTotal, each bounded by the limits
// of the cgroup this process runs in and of its ancestors (CPU quota,
// cpuset, memory limit), and, with [Config.IO], the configured bandwidth
// as [hal.IO].
func (d *Device) Capacity(ctx context.Context) (hal.Vector, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("linux: capacity: %w", err)
	}
	online, err := d.onlineCPUs()
	if err != nil {
		return nil, err
	}
	mi, err := d.proc.Meminfo()
	if err != nil {
		return nil, fmt.Errorf("linux: capacity: meminfo: %w", err)
	}
	if mi.MemTotal == nil {
		return nil, fmt.Errorf("linux: capacity: %s/meminfo has no MemTotal", d.cfg.Proc)
	}
	cores := float64(len(online))
	memory := float64(*mi.MemTotal) * 1024
	own, err := cgroups.ParseCgroupFile(filepath.Join(d.cfg.Proc, "self/cgroup"))
	if err != nil {
		return nil, fmt.Errorf("linux: capacity: own cgroup: %w", err)
	}
	limits, err := d.ownLimits(own)
	if err != nil {
		return nil, fmt.Errorf("linux: capacity: %w", err)
	}
	capacity := hal.Vector{
		hal.CPU:    math.Min(cores, limits.cores),
		hal.Memory: math.Min(memory, limits.memory),
	}
	if d.cfg.IO != nil {
		capacity[hal.IO] = d.cfg.IO.Bandwidth
	}
	return capacity, nil
}

// limits are the bounds a cgroup and its ancestors put on their members.
type limits struct {
	cores  float64 // +Inf when unlimited
	memory float64 // bytes; +Inf when unlimited
}

// ownLimits walks from this process's cgroups up to the hierarchy roots,
// keeping the tightest CPU quota, cpuset and memory limit. A level whose
// directory is not visible (another cgroup namespace) is skipped.
func (d *Device) ownLimits(own map[string]string) (limits, error) {
	lim := limits{cores: math.Inf(1), memory: math.Inf(1)}
	l := d.layout
	cpuCg, memCg, setCg := own[ctrlCPU], own[ctrlMemory], own[ctrlCPUSet]
	if l.v2 {
		cpuCg, memCg, setCg = own[""], own[""], own[""]
	}
	for _, rel := range ancestors(cpuCg) {
		q, err := readQuota(l, l.dir(ctrlCPU, rel))
		if err != nil {
			return lim, err
		}
		lim.cores = math.Min(lim.cores, q)
	}
	for _, rel := range ancestors(memCg) {
		m, err := readMemoryLimit(l, l.dir(ctrlMemory, rel))
		if err != nil {
			return lim, err
		}
		lim.memory = math.Min(lim.memory, m)
	}
	if setCg != "" || l.v2 {
		file := "cpuset.effective_cpus"
		if l.v2 {
			file = "cpuset.cpus.effective"
		}
		if s, ok, err := readOptional(l.dir(ctrlCPUSet, setCg), file); err != nil {
			return lim, err
		} else if ok && strings.TrimSpace(s) != "" {
			cpus, err := ParseCPUList(s)
			if err != nil {
				return lim, fmt.Errorf("%s: %w", filepath.Join(l.dir(ctrlCPUSet, setCg), file), err)
			}
			lim.cores = math.Min(lim.cores, float64(len(cpus)))
		}
	}
	return lim, nil
}

// ancestors returns cg and each ancestor up to the root, "" excluded:
// "/a/b" gives ["a/b", "a"].
func ancestors(cg string) []string {
	var out []string
	for p := strings.Trim(cg, "/"); p != "" && p != "."; p = path.Dir(p) {
		out = append(out, p)
	}
	return out
}

// readOptional reads dir/file; ok is false when it does not exist.
func readOptional(dir, file string) (string, bool, error) {
	s, err := cgroups.ReadFile(dir, file)
	if isNotExist(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return s, true, nil
}

// readQuota returns the cores a cgroup's CFS quota allows (+Inf if none).
func readQuota(l layout, dir string) (float64, error) {
	if l.v2 {
		s, ok, err := readOptional(dir, "cpu.max")
		if err != nil || !ok {
			return math.Inf(1), err
		}
		q, err := ParseCPUMax(s)
		if err != nil {
			return 0, fmt.Errorf("%s/cpu.max: %w", dir, err)
		}
		return q, nil
	}
	qs, ok, err := readOptional(dir, "cpu.cfs_quota_us")
	if err != nil || !ok {
		return math.Inf(1), err
	}
	ps, _, err := readOptional(dir, "cpu.cfs_period_us")
	if err != nil {
		return 0, err
	}
	q, err1 := strconv.ParseInt(strings.TrimSpace(qs), 10, 64)
	p, err2 := strconv.ParseInt(strings.TrimSpace(ps), 10, 64)
	if err1 != nil || err2 != nil || p <= 0 {
		return 0, fmt.Errorf("%s: unreadable CFS quota %q / period %q", dir, strings.TrimSpace(qs), strings.TrimSpace(ps))
	}
	if q < 0 {
		return math.Inf(1), nil
	}
	return float64(q) / float64(p), nil
}

// readMemoryLimit returns a cgroup's memory limit in bytes (+Inf if none).
func readMemoryLimit(l layout, dir string) (float64, error) {
	file := "memory.limit_in_bytes"
	if l.v2 {
		file = "memory.max"
	}
	s, ok, err := readOptional(dir, file)
	if err != nil || !ok {
		return math.Inf(1), err
	}
	v, err := ParseMemoryValue(s)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, file, err)
	}
	return v, nil
}
