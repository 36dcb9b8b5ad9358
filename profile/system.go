package profile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/prometheus/procfs"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

// Pressure resources report the share of wall time (0..1) during which
// some task was stalled on cpu, memory or io, from pressure stall
// information (PSI), between consecutive samples. The "full" variants
// count time when every non-idle task was stalled.
const (
	PressureCPU        hal.Resource = "pressure.cpu"
	PressureMemory     hal.Resource = "pressure.memory"
	PressureMemoryFull hal.Resource = "pressure.memory.full"
	PressureIO         hal.Resource = "pressure.io"
	PressureIOFull     hal.Resource = "pressure.io.full"
)

// DefaultSystemFunction is the function name SystemCollector reports
// under unless told otherwise.
const DefaultSystemFunction = "system"

// SystemOptions configure a [SystemCollector].
type SystemOptions struct {
	Root     string           // procfs mount point; empty means [DefaultProcRoot]
	Function string           // name the samples carry; empty means [DefaultSystemFunction]
	Clock    func() time.Time // nil means time.Now
}

// SystemCollector reads the machine's CPU (cores busy, from /proc/stat),
// memory (bytes in use: MemTotal − MemAvailable, from /proc/meminfo) and
// pressure (the Pressure* resources, from /proc/pressure/*) and reports
// them as one function. Rates need two calls; the first Collect reports
// memory only. A kernel without PSI simply reports no pressure resources.
// Collect may be called from one goroutine at a time.
type SystemCollector struct {
	fs       procfs.FS
	root     string
	function string
	clock    func() time.Time

	mu   sync.Mutex // guards prev
	prev *systemReading
}

var _ Collector = (*SystemCollector)(nil)

type systemReading struct {
	at       time.Time
	busy     float64 // CPU seconds not idle or iowait, all CPUs
	pressure map[hal.Resource]uint64
}

// NewSystemCollector returns a SystemCollector, or an error if the procfs
// root cannot be opened.
func NewSystemCollector(opts SystemOptions) (*SystemCollector, error) {
	root := opts.Root
	if root == "" {
		root = DefaultProcRoot
	}
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("profile: procfs at %s: %w", root, err)
	}
	c := &SystemCollector{fs: pfs, root: root, function: opts.Function, clock: opts.Clock}
	if c.function == "" {
		c.function = DefaultSystemFunction
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	return c, nil
}

// Collect implements [Collector].
func (c *SystemCollector) Collect(ctx context.Context) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("profile: system collect: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	s := Sample{Function: c.function, Time: now, Usage: hal.Vector{}}
	var errs *multierror.Error

	cur := &systemReading{at: now, pressure: map[hal.Resource]uint64{}}
	st, err := c.fs.Stat()
	if err != nil {
		errs = multierror.Append(errs, fmt.Errorf("profile: %s/stat: %w", c.root, err))
		cur = nil
	} else {
		t := st.CPUTotal
		cur.busy = t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	}
	if mi, err := c.fs.Meminfo(); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("profile: %s/meminfo: %w", c.root, err))
	} else if mi.MemTotal != nil && mi.MemAvailable != nil {
		s.Usage[hal.Memory] = float64(*mi.MemTotal-min(*mi.MemAvailable, *mi.MemTotal)) * 1024
	} else {
		errs = multierror.Append(errs, fmt.Errorf("profile: %s/meminfo: no MemTotal or MemAvailable line", c.root))
	}
	if cur != nil {
		for _, res := range cgroupfs.Resources {
			ps, err := cgroupfs.SystemPressure(c.root, res)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				continue // no PSI on this kernel
			}
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("profile: %s: %w", c.root, err))
				continue
			}
			cur.pressure[hal.Resource("pressure."+res)] = ps.Some.Total
			if ps.Full != nil && res != "cpu" {
				cur.pressure[hal.Resource("pressure."+res+".full")] = ps.Full.Total
			}
		}
		if c.prev != nil {
			if dt := now.Sub(c.prev.at).Seconds(); dt > 0 {
				s.Usage[hal.CPU] = max(cur.busy-c.prev.busy, 0) / dt
				for r, total := range cur.pressure {
					if p, ok := c.prev.pressure[r]; ok && total >= p {
						s.Usage[r] = min(float64(total-p)/1e6/dt, 1) // totals are µs
					}
				}
				s.Interval = now.Sub(c.prev.at)
			}
		}
		c.prev = cur
	}
	if len(s.Usage) == 0 {
		return nil, errs.ErrorOrNil()
	}
	return []Sample{s}, errs.ErrorOrNil()
}
