package linux

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// maxCPU bounds CPU numbers in a list, far above any real machine, so a
// malformed list cannot make ParseCPUList allocate without limit.
const maxCPU = 1 << 16

// ParseCPUList parses a Linux CPU list such as "0-3,8,10-11" (the format of
// /sys/devices/system/cpu/online and cpuset.cpus) into sorted, distinct
// CPU numbers. Surrounding white space is ignored; an empty list is valid
// and yields no CPUs.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	set := map[int]bool{}
	if len(s) > maxCPU {
		return nil, fmt.Errorf("cpu list of %d bytes is too long", len(s))
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("cpu list %q: %w", s, err)
			}
			if last < first {
				return nil, fmt.Errorf("cpu list %q: range %q is reversed", s, part)
			}
		}
		for c := first; c <= last; c++ {
			set[c] = true
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

func parseCPU(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("CPU %d is beyond the supported %d", n, maxCPU-1)
	}
	return n, nil
}
