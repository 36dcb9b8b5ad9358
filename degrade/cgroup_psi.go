package degrade

import (
	"context"
	"fmt"
	"math"

	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

var _ PressureSource = (*CgroupPSI)(nil)

// CgroupPSI reads the pressure stall information of one cgroup v2 group
// (its cpu.pressure, memory.pressure and io.pressure files) and reports
// the worst "some avg10" (parsed by internal/cgroupfs), so adaptive limits follow the pressure on the
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
		stats, err := cgroupfs.CgroupPressure(p.dir, res)
		if err != nil {
			return 0, fmt.Errorf("degrade: cgroup PSI: %w", err)
		}
		v := stats.Some.Avg10
		worst = math.Max(worst, v)
	}
	return worst, nil
}
