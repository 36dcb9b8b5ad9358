package linux

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseCPUMax parses a cgroup v2 cpu.max value ("max 100000" or
// "50000 100000") into cores; "max" gives +Inf.
func ParseCPUMax(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("cpu.max %q: want \"<quota|max> <period>\"", s)
	}
	period, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || period == 0 {
		return 0, fmt.Errorf("cpu.max %q: period %q is not a positive integer", s, f[1])
	}
	if f[0] == "max" {
		return math.Inf(1), nil
	}
	quota, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu.max %q: quota %q is neither \"max\" nor an integer", s, f[0])
	}
	return float64(quota) / float64(period), nil
}

// v1Unlimited is the smallest value cgroup v1 reports for "no limit"
// (PAGE_COUNTER_MAX pages, rounded); anything at or above it is unlimited.
const v1Unlimited = 1 << 62

// ParseMemoryValue parses a cgroup memory value in bytes: "max" (v2) or
// v1's page-counter maximum (9223372036854771712 and similar) give +Inf.
func ParseMemoryValue(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "max" || s == "-1" {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory value %q is neither \"max\" nor a byte count", s)
	}
	if v >= v1Unlimited {
		return math.Inf(1), nil
	}
	return float64(v), nil
}
