package degrade

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

var _ PressureSource = (*CgroupPSI)(nil)

// CgroupPSI reads the pressure stall information of one cgroup v2 group
// (its cpu.pressure, memory.pressure and io.pressure files) and reports
// the worst "some avg10", so adaptive limits follow the pressure on the
// data plane's own cgroup rather than the whole machine's. Create it with
// [NewCgroupPSI]; safe for concurrent use. [PSI] reads the system-wide
// figures from /proc.
type CgroupPSI struct {
	dir       string
	resources []string
}

// NewCgroupPSI returns a source reading the cgroup v2 directory dir (for
// example "/sys/fs/cgroup/dataplane", or "/sys/fs/cgroup/unified/..." on a
// hybrid host) for the given resources (none = "cpu", "memory" and "io").
// It reads each file once, so a missing file or a kernel without PSI fails
// here.
func NewCgroupPSI(dir string, resources ...string) (*CgroupPSI, error) {
	if len(resources) == 0 {
		resources = []string{"cpu", "memory", "io"}
	}
	p := &CgroupPSI{dir: dir, resources: append([]string(nil), resources...)}
	if _, err := p.Pressure(context.Background()); err != nil {
		return nil, err
	}
	return p, nil
}

// Pressure returns the highest "some avg10" percentage among the watched
// resources' <resource>.pressure files.
func (p *CgroupPSI) Pressure(ctx context.Context) (float64, error) {
	worst := 0.0
	for _, res := range p.resources {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("degrade: cgroup PSI: %w", err)
		}
		path := filepath.Join(p.dir, res+".pressure")
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("degrade: cgroup PSI: %w", err)
		}
		v, err := parsePressure(data)
		if err != nil {
			return 0, fmt.Errorf("degrade: cgroup PSI %s: %w", path, err)
		}
		worst = math.Max(worst, v)
	}
	return worst, nil
}

// parsePressure returns the avg10 of the "some" line of a PSI file:
//
//	some avg10=1.50 avg60=0.80 avg300=0.20 total=123456
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// Unknown lines and fields are ignored, as the kernel may add some.
func parsePressure(data []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, f := range fields[1:] {
			value, ok := strings.CutPrefix(f, "avg10=")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
				return 0, fmt.Errorf("line %d: avg10 %q is not a percentage 0-100", line, value)
			}
			return v, nil
		}
		return 0, fmt.Errorf("line %d: \"some\" line without avg10", line)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no \"some\" line")
}
