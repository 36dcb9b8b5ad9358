package degrade

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/procfs"

	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

var _ PressureSource = (*PSI)(nil)

// PSI reads Linux pressure stall information (/proc/pressure/{cpu,memory,io})
// through internal/cgroupfs (github.com/prometheus/procfs) and reports the worst "some avg10"
// of the resources it watches. Create it with [NewPSI]; safe for concurrent
// use.
type PSI struct {
	root      string
	resources []string
}

// NewPSI returns a PSI source reading procRoot (procfs.DefaultMountPoint,
// "/proc", on a live system; a fixture directory in tests) for the given
// resources (none = "cpu", "memory" and "io"). It reads each file once, so a
// kernel without PSI or a wrong root fails here rather than during an
// update.
func NewPSI(procRoot string, resources ...string) (*PSI, error) {
	if _, err := procfs.NewFS(procRoot); err != nil {
		return nil, fmt.Errorf("degrade: PSI at %q: %w", procRoot, err)
	}
	if len(resources) == 0 {
		resources = cgroupfs.Resources
	}
	p := &PSI{root: procRoot, resources: append([]string(nil), resources...)}
	if _, err := p.Pressure(context.Background()); err != nil {
		return nil, err
	}
	return p, nil
}

// Pressure returns the highest "some avg10" percentage among the watched
// resources.
func (p *PSI) Pressure(ctx context.Context) (float64, error) {
	return worstAvg10(ctx, "PSI", p.resources, func(res string) (procfs.PSIStats, error) {
		return cgroupfs.SystemPressure(p.root, res)
	})
}

// worstAvg10 returns the highest "some avg10" that read gives for
// resources; [PSI] and [CgroupPSI] differ only in read. internal/cgroupfs
// has checked each avg10 is a percentage.
func worstAvg10(ctx context.Context, what string, resources []string, read func(resource string) (procfs.PSIStats, error)) (float64, error) {
	worst := 0.0
	for _, res := range resources {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("degrade: %s: %w", what, err)
		}
		stats, err := read(res)
		if err != nil {
			return 0, fmt.Errorf("degrade: %s: %w", what, err)
		}
		worst = math.Max(worst, stats.Some.Avg10)
	}
	return worst, nil
}
