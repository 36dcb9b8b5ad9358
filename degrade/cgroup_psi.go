package degrade

import (
	"context"
	"github.com/prometheus/procfs"

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
		resources = cgroupfs.Resources
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
	return worstAvg10(ctx, "cgroup PSI", p.resources, func(res string) (procfs.PSIStats, error) {
		return cgroupfs.CgroupPressure(p.dir, res)
	})
}
