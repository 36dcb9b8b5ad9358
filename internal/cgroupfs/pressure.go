package cgroupfs

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Resources are the PSI resources the kernel reports.
var Resources = []string{"cpu", "memory", "io"}

// SystemPressure reads <procRoot>/pressure/<resource> ("/proc" on a live
// system; a fixture directory in tests) through prometheus/procfs and checks
// it as [ParsePressure] does: a "some" line with avg10 within 0-100. Errors
// name the file.
func SystemPressure(procRoot, resource string) (procfs.PSIStats, error) {
	name := filepath.Join(procRoot, "pressure", resource)
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s: %w", name, err)
	}
	st, err := fs.PSIStatsForResource(resource)
	if err != nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s: %w: %w", name, err, ErrMalformed)
	}
	if st.Some == nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s: no \"some\" line: %w", name, ErrMalformed)
	}
	for _, l := range []*procfs.PSILine{st.Some, st.Full} {
		if l != nil && !isPercent(l.Avg10) {
			return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s: avg10=%v is outside 0-100: %w", name, l.Avg10, ErrMalformed)
		}
	}
	return st, nil
}

// CgroupPressure reads dir/<resource>.pressure, a per-cgroup PSI file.
func CgroupPressure(dir, resource string) (procfs.PSIStats, error) {
	name := filepath.Join(dir, resource+".pressure")
	data, err := os.ReadFile(name)
	if err != nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %w", err)
	}
	return ParsePressure(name, data)
}

// ParsePressure parses a pressure file named name (for messages):
//
//	some avg10=1.50 avg60=0.80 avg300=0.20 total=123456
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// Each some/full line needs avg10 (a percentage 0-100) and total (µs);
// avg60 and avg300 must be percentages when present. Unknown lines and
// fields are ignored, as the kernel may add some; a file without a "some"
// line is an error. Errors wrap [ErrMalformed] and name the file and line.
func ParsePressure(name string, data []byte) (procfs.PSIStats, error) {
	var st procfs.PSIStats
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || (fields[0] != "some" && fields[0] != "full") {
			continue
		}
		l, err := parsePressureLine(fields[1:])
		if err != nil {
			return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s:%d: %s line: %w", name, line, fields[0], err)
		}
		if fields[0] == "some" {
			st.Some = l
		} else {
			st.Full = l
		}
	}
	if err := sc.Err(); err != nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s:%d: %w: %w", name, line+1, ErrMalformed, err)
	}
	if st.Some == nil {
		return procfs.PSIStats{}, fmt.Errorf("cgroupfs: %s: no \"some\" line: %w", name, ErrMalformed)
	}
	return st, nil
}

func parsePressureLine(fields []string) (*procfs.PSILine, error) {
	var l procfs.PSILine
	var hasAvg10, hasTotal bool
	for _, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value: %w", truncate(kv), ErrMalformed)
		}
		var dst *float64
		switch k {
		case "total":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("total=%q is not an unsigned integer: %w", truncate(v), ErrMalformed)
			}
			l.Total, hasTotal = n, true
			continue
		case "avg10":
			dst, hasAvg10 = &l.Avg10, true
		case "avg60":
			dst = &l.Avg60
		case "avg300":
			dst = &l.Avg300
		default:
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !isPercent(f) {
			return nil, fmt.Errorf("%s=%q is not a percentage 0-100: %w", k, truncate(v), ErrMalformed)
		}
		*dst = f
	}
	if !hasAvg10 {
		return nil, fmt.Errorf("no avg10: %w", ErrMalformed)
	}
	if !hasTotal {
		return nil, fmt.Errorf("no total: %w", ErrMalformed)
	}
	return &l, nil
}

func isPercent(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 100 }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
