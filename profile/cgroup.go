package profile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

// MemoryPeak is the highest memory use, in bytes, the kernel has recorded
// for a cgroup (memory.peak in v2, memory.max_usage_in_bytes in v1).
const MemoryPeak hal.Resource = "memory.peak"

// DefaultCgroupRoot is where cgroups are mounted unless told otherwise.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// CgroupVersion selects the cgroup layout a [CgroupCollector] reads.
type CgroupVersion int

// Cgroup layouts.
const (
	CgroupDetect CgroupVersion = iota // as internal/cgroupfs.Detect: v2 if Root holds cgroup.controllers, v1 if it holds a v1 hierarchy
	CgroupV1                          // one hierarchy per controller: Root/cpuacct, Root/memory, Root/blkio (+ Root/unified for PSI)
	CgroupV2                          // the unified hierarchy at Root
)

// String returns "detect", "v1" or "v2".
func (v CgroupVersion) String() string {
	switch v {
	case CgroupDetect:
		return "detect"
	case CgroupV1:
		return "v1"
	case CgroupV2:
		return "v2"
	}
	return fmt.Sprintf("CgroupVersion(%d)", int(v))
}

// CgroupTarget binds a cgroup to a function. Path is relative to the
// hierarchy root, e.g. "updraft/routes".
type CgroupTarget struct {
	Function string
	Path     string
	// V1Paths overrides Path for single v1 hierarchies, keyed by their
	// directory under Root ("cpuacct", "memory", "blkio", and "unified"
	// for per-cgroup PSI on a hybrid system), for processes whose v1
	// cgroups differ per controller. Ignored for v2.
	V1Paths map[string]string
}

// v1Path returns the cleaned path of t in the v1 hierarchy named h.
func (t CgroupTarget) v1Path(h string) string {
	if p, ok := t.V1Paths[h]; ok {
		return cleanCgroupPath(p)
	}
	return t.Path
}

func cleanCgroupPath(p string) string {
	return strings.TrimPrefix(filepath.Clean("/"+p), "/")
}

// CgroupOptions configure a [CgroupCollector].
type CgroupOptions struct {
	Root    string        // cgroup mount point; empty means [DefaultCgroupRoot]
	Version CgroupVersion // layout; the zero value detects it
	Targets []CgroupTarget
	Clock   func() time.Time // nil means time.Now
}

// CgroupCollector reads each target cgroup's CPU usage ([hal.CPU] in
// cores, a rate between consecutive calls), memory current ([hal.Memory])
// and peak ([MemoryPeak]) in bytes, block I/O ([hal.IO] in bytes/s) and,
// where the kernel offers per-cgroup PSI (cgroup v2, or the unified
// hierarchy of a v1 hybrid), the Pressure* resources. A controller or file
// the system does not have is left out of the sample; a cgroup whose
// directory is gone is skipped and counted ([CgroupCollector.Gone]); a
// malformed file is an error naming the file and line. Collect may be
// called from one goroutine at a time.
type CgroupCollector struct {
	root    string
	version CgroupVersion
	layout  cgroupfs.Layout
	clock   func() time.Time
	targets []CgroupTarget

	mu   sync.Mutex            // guards prev and gone
	prev map[int]cgroupReading // by index in targets
	gone int64
}

var _ Collector = (*CgroupCollector)(nil)

type cgroupReading struct {
	at       time.Time
	cpuNanos uint64
	hasCPU   bool
	ioBytes  uint64
	hasIO    bool
	pressure map[hal.Resource]uint64
}

// NewCgroupCollector returns a collector over opts.Targets, or an error if
// the root does not exist, the version cannot be told, or a target is
// malformed (an empty function or a path leaving the root).
func NewCgroupCollector(opts CgroupOptions) (*CgroupCollector, error) {
	c := &CgroupCollector{root: opts.Root, version: opts.Version, clock: opts.Clock, prev: make(map[int]cgroupReading)}
	if c.root == "" {
		c.root = DefaultCgroupRoot
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if fi, err := os.Stat(c.root); err != nil {
		return nil, fmt.Errorf("profile: cgroup root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("profile: cgroup root %s is not a directory", c.root)
	}
	switch c.version {
	case CgroupDetect:
		l, err := cgroupfs.Detect(c.root)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		c.version = CgroupV1
		if l.V2 {
			c.version = CgroupV2
		}
	case CgroupV1, CgroupV2:
	default:
		return nil, fmt.Errorf("profile: cgroup version %d is not CgroupDetect, CgroupV1 or CgroupV2", int(c.version))
	}
	c.layout = cgroupfs.Layout{Root: c.root, V2: c.version == CgroupV2}
	for i, t := range opts.Targets {
		if t.Function == "" {
			return nil, fmt.Errorf("profile: cgroup target #%d (%q) has no function name", i, t.Path)
		}
		paths := []string{t.Path}
		for _, p := range t.V1Paths {
			paths = append(paths, p)
		}
		for _, p := range paths {
			if slices.Contains(strings.Split(filepath.ToSlash(p), "/"), "..") {
				return nil, fmt.Errorf("profile: cgroup target #%d of function %q: path %q may not contain \"..\"", i, t.Function, p)
			}
		}
		ct := CgroupTarget{Function: t.Function, Path: cleanCgroupPath(t.Path), V1Paths: make(map[string]string, len(t.V1Paths))}
		for h, p := range t.V1Paths {
			ct.V1Paths[h] = cleanCgroupPath(p)
		}
		c.targets = append(c.targets, ct)
	}
	return c, nil
}

// Version returns the layout the collector reads (after detection).
func (c *CgroupCollector) Version() CgroupVersion { return c.version }

// Gone returns how many readings were skipped because the cgroup no longer
// existed.
func (c *CgroupCollector) Gone() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// errCgroupGone marks a cgroup whose directory has disappeared.
var errCgroupGone = errors.New("cgroup gone")

// Collect implements [Collector]: one sample per function with at least
// one live cgroup, sorted by function; several cgroups of one function are
// summed (their peaks too, which bounds the combined peak from above).
func (c *CgroupCollector) Collect(ctx context.Context) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("profile: cgroup collect: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byFunc := make(map[string]*Sample)
	var errs *multierror.Error
	for i, t := range c.targets {
		now := c.clock()
		usage := hal.Vector{}
		r, err := c.read(t, now, usage)
		if errors.Is(err, errCgroupGone) {
			c.gone++
			delete(c.prev, i)
			continue
		}
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("profile: function %q: %w", t.Function, err))
			continue
		}
		s := byFunc[t.Function]
		if s == nil {
			s = &Sample{Function: t.Function, Time: now, Usage: hal.Vector{}}
			byFunc[t.Function] = s
		}
		if p, ok := c.prev[i]; ok {
			if dt := now.Sub(p.at); dt > 0 {
				sec := dt.Seconds()
				if r.hasCPU && p.hasCPU && r.cpuNanos >= p.cpuNanos {
					usage[hal.CPU] = float64(r.cpuNanos-p.cpuNanos) / 1e9 / sec
				}
				if r.hasIO && p.hasIO && r.ioBytes >= p.ioBytes {
					usage[hal.IO] = float64(r.ioBytes-p.ioBytes) / sec
				}
				for res, total := range r.pressure {
					if old, ok := p.pressure[res]; ok && total >= old {
						usage[res] = min(float64(total-old)/1e6/sec, 1)
					}
				}
				s.Interval = max(s.Interval, dt)
			}
		}
		for res, q := range usage {
			if strings.HasPrefix(string(res), "pressure.") {
				s.Usage[res] = max(s.Usage[res], q) // stall shares do not add up
			} else {
				s.Usage[res] += q
			}
		}
		c.prev[i] = r
	}
	names := make([]string, 0, len(byFunc))
	for f := range byFunc {
		names = append(names, f)
	}
	slices.Sort(names)
	out := make([]Sample, 0, len(names))
	for _, f := range names {
		out = append(out, *byFunc[f])
	}
	return out, errs.ErrorOrNil()
}

// read takes one reading of t, putting memory levels straight into usage.
// A file the system does not have (a controller not mounted, an old
// kernel) is left out; a cgroup with no directory left is errCgroupGone.
func (c *CgroupCollector) read(t CgroupTarget, now time.Time, usage hal.Vector) (cgroupReading, error) {
	l := c.layout
	rel := func(h string) string {
		if l.V2 {
			return t.Path
		}
		return t.v1Path(h)
	}
	present := false
	for _, h := range []string{cgroupfs.CPUAcct, cgroupfs.Memory, cgroupfs.Blkio} {
		if _, err := os.Stat(l.Dir(h, rel(h))); err == nil {
			present = true
		}
	}
	if !present {
		return cgroupReading{}, errCgroupGone
	}
	r := cgroupReading{at: now}
	var errs *multierror.Error
	keep := func(err error) bool { // false for an absent file, which is no error
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = multierror.Append(errs, err)
		}
		return err == nil
	}
	if cpu, err := l.CPUUsage(rel(cgroupfs.CPUAcct)); keep(err) {
		r.cpuNanos, r.hasCPU = uint64(cpu), true
	}
	if n, err := l.MemoryUsage(rel(cgroupfs.Memory)); keep(err) {
		usage[hal.Memory] = float64(n)
	}
	if n, err := l.MemoryPeak(rel(cgroupfs.Memory)); keep(err) {
		usage[MemoryPeak] = float64(n)
	}
	if n, err := l.IOBytes(rel(cgroupfs.Blkio)); keep(err) {
		r.ioBytes, r.hasIO = n, true
	}
	r.pressure = readPressure(l.PressureDir(rel(cgroupfs.Unified)), &errs)
	return r, errs.ErrorOrNil()
}

func readPressure(dir string, errs **multierror.Error) map[hal.Resource]uint64 {
	out := map[hal.Resource]uint64{}
	for _, res := range cgroupfs.Resources {
		p, err := cgroupfs.CgroupPressure(dir, res)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EOPNOTSUPP) {
				*errs = multierror.Append(*errs, err)
			}
			continue
		}
		out[hal.Resource("pressure."+res)] = p.Some.Total
		if p.Full != nil && res != "cpu" {
			out[hal.Resource("pressure."+res+".full")] = p.Full.Total
		}
	}
	return out
}
