package cgroupfs

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups/fscommon"
)

// ReadUint reads dir/file holding one unsigned integer ("max" reads as
// math.MaxUint64), parsed by opencontainers/cgroups' fscommon.ParseUint.
// The file is opened here rather than through opencontainers/cgroups,
// whose opener refuses any file not on a cgroup filesystem, so the same
// code reads testdata fixtures. A missing file gives an error matching
// fs.ErrNotExist; a malformed one wraps [ErrMalformed]; every error names
// the file.
func ReadUint(dir, file string) (uint64, error) {
	name := filepath.Join(dir, file)
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("cgroupfs: %w", err)
	}
	return ParseUint(name, data)
}

// ParseUint parses the content of a single-value file named name.
func ParseUint(name string, data []byte) (uint64, error) {
	s := strings.TrimSpace(string(data))
	switch {
	case s == "max":
		return math.MaxUint64, nil
	case s == "":
		return 0, fmt.Errorf("cgroupfs: %s:1: empty, want a number: %w", name, ErrMalformed)
	case strings.Contains(s, "\n"):
		return 0, fmt.Errorf("cgroupfs: %s:2: more than one line, want a single number: %w", name, ErrMalformed)
	}
	v, err := fscommon.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroupfs: %s:1: %q is not an unsigned integer: %w", name, truncate(s), ErrMalformed)
	}
	return v, nil
}

// ReadKey reads the value of key in dir/file, a flat-keyed file ("key
// value" lines: cpu.stat, memory.stat) whose lines are parsed by
// opencontainers/cgroups' fscommon.ParseKeyValue; found is false when no
// line has the key. Errors as [ReadUint].
func ReadKey(dir, file, key string) (value uint64, found bool, err error) {
	name := filepath.Join(dir, file)
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, false, fmt.Errorf("cgroupfs: %w", err)
	}
	return ParseKey(name, data, key)
}

// ParseKey parses the content of a flat-keyed file named name.
func ParseKey(name string, data []byte, key string) (value uint64, found bool, err error) {
	for i, line := range strings.Split(string(data), "\n") {
		if k, _, _ := strings.Cut(line, " "); k != key {
			continue
		}
		_, v, err := fscommon.ParseKeyValue(line)
		if err != nil {
			return 0, false, fmt.Errorf("cgroupfs: %s:%d: %w: %w", name, i+1, err, ErrMalformed)
		}
		return v, true, nil
	}
	return 0, false, nil
}

// CPUUsage returns the CPU time cgroup rel has used: cpu.stat usage_usec on
// v2, cpuacct.usage on v1.
func (l Layout) CPUUsage(rel string) (time.Duration, error) {
	if l.V2 {
		usec, found, err := ReadKey(l.Dir("", rel), "cpu.stat", "usage_usec")
		if err == nil && !found {
			err = fmt.Errorf("cgroupfs: %s: no usage_usec: %w", filepath.Join(l.Dir("", rel), "cpu.stat"), ErrMalformed)
		}
		return time.Duration(usec) * time.Microsecond, err
	}
	ns, err := ReadUint(l.Dir(CPUAcct, rel), "cpuacct.usage")
	return time.Duration(ns), err
}

// MemoryUsage returns the memory cgroup rel uses now, in bytes:
// memory.current on v2, memory.usage_in_bytes on v1.
func (l Layout) MemoryUsage(rel string) (uint64, error) {
	if l.V2 {
		return ReadUint(l.Dir("", rel), "memory.current")
	}
	return ReadUint(l.Dir(Memory, rel), "memory.usage_in_bytes")
}

// MemoryPeak returns the highest memory use, in bytes, the kernel recorded
// for cgroup rel: memory.peak on v2 (kernel 5.19+), memory.max_usage_in_bytes
// on v1.
func (l Layout) MemoryPeak(rel string) (uint64, error) {
	if l.V2 {
		return ReadUint(l.Dir("", rel), "memory.peak")
	}
	return ReadUint(l.Dir(Memory, rel), "memory.max_usage_in_bytes")
}

// MemoryLimit returns cgroup rel's memory limit in bytes (math.MaxUint64
// when unlimited): memory.max on v2, memory.limit_in_bytes on v1.
func (l Layout) MemoryLimit(rel string) (uint64, error) {
	if l.V2 {
		return ReadUint(l.Dir("", rel), "memory.max")
	}
	return ReadUint(l.Dir(Memory, rel), "memory.limit_in_bytes")
}

// IOBytes returns the bytes cgroup rel has read plus written over every
// device: io.stat on v2, blkio.throttle.io_service_bytes on v1.
func (l Layout) IOBytes(rel string) (uint64, error) {
	if l.V2 {
		name := filepath.Join(l.Dir("", rel), "io.stat")
		data, err := os.ReadFile(name)
		if err != nil {
			return 0, fmt.Errorf("cgroupfs: %w", err)
		}
		return ParseIOStat(name, data)
	}
	name := filepath.Join(l.Dir(Blkio, rel), "blkio.throttle.io_service_bytes")
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("cgroupfs: %w", err)
	}
	return ParseBlkio(name, data)
}
