package profile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/prometheus/procfs"
	"github.com/updraft-dev/updraft/hal"
)

// DefaultProcRoot is where procfs is mounted unless told otherwise.
const DefaultProcRoot = "/proc"

// ProcTarget binds a process, or one thread of it, to a function. Several
// targets may name the same function; their usage is summed.
type ProcTarget struct {
	Function string
	PID      int
	TID      int // 0 for the whole process; otherwise one thread of PID
}

// ProcOptions configure a [ProcCollector].
type ProcOptions struct {
	// Root is the procfs mount point; empty means [DefaultProcRoot].
	// Tests point it at fixtures under testdata/.
	Root string
	// Targets are the processes and threads to measure.
	Targets []ProcTarget
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives a record for each process that has gone; nil
	// discards them.
	Logger *slog.Logger
}

// ProcCollector reads per-process and per-thread CPU time, resident memory
// and I/O bytes from procfs and reports, per function, [hal.CPU] in cores
// and [hal.IO] in bytes/s (rates between consecutive calls, so the first
// Collect reports memory only) and [hal.Memory] in bytes (resident set).
// A thread target reports CPU only: memory and I/O are per process.
//
// A process or thread that has exited is skipped and counted
// ([ProcCollector.Gone]); a file that cannot be parsed is an error naming
// it. Collect may be called from one goroutine at a time; SetTargets and
// Gone are safe to call concurrently with it.
type ProcCollector struct {
	fs    procfs.FS
	root  string
	clock func() time.Time
	log   *slog.Logger

	mu      sync.Mutex // guards targets, gone and prev
	targets []ProcTarget
	gone    int64
	prev    map[ProcTarget]procReading
}

var _ Collector = (*ProcCollector)(nil)

// procReading is one target's counters at one instant.
type procReading struct {
	at      time.Time
	cpu     float64 // seconds
	ioBytes uint64  // read_bytes + write_bytes
	hasIO   bool
}

// NewProcCollector returns a collector over opts.Targets, or an error if
// the procfs root cannot be opened or a target is malformed.
func NewProcCollector(opts ProcOptions) (*ProcCollector, error) {
	root := opts.Root
	if root == "" {
		root = DefaultProcRoot
	}
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("profile: procfs at %s: %w", root, err)
	}
	c := &ProcCollector{fs: pfs, root: root, clock: opts.Clock, log: opts.Logger, prev: make(map[ProcTarget]procReading)}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := c.SetTargets(opts.Targets); err != nil {
		return nil, err
	}
	return c, nil
}

// SetTargets replaces the targets measured from the next Collect on.
// Targets kept from before keep their previous readings, so their rates
// continue.
func (c *ProcCollector) SetTargets(targets []ProcTarget) error {
	for i, t := range targets {
		switch {
		case t.Function == "":
			return fmt.Errorf("profile: proc target #%d (pid %d) has no function name", i, t.PID)
		case t.PID <= 0:
			return fmt.Errorf("profile: proc target #%d of function %q: pid %d is not positive", i, t.Function, t.PID)
		case t.TID < 0:
			return fmt.Errorf("profile: proc target #%d of function %q: tid %d is negative", i, t.Function, t.TID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.targets = slices.Clone(targets)
	for t := range c.prev {
		if !slices.Contains(c.targets, t) {
			delete(c.prev, t)
		}
	}
	return nil
}

// Gone returns how many readings were skipped because their process or
// thread had exited.
func (c *ProcCollector) Gone() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// Collect implements [Collector]: one sample per function with at least
// one live target, sorted by function.
func (c *ProcCollector) Collect(ctx context.Context) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("profile: proc collect: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byFunc := make(map[string]*Sample)
	var order []string
	var errs *multierror.Error
	for _, t := range c.targets {
		now := c.clock()
		r, rss, err := c.read(t, now)
		if errors.Is(err, fs.ErrNotExist) {
			c.gone++
			delete(c.prev, t)
			c.log.Debug("profile: process gone", "function", t.Function, "pid", t.PID, "tid", t.TID)
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
			order = append(order, t.Function)
		}
		if t.TID == 0 {
			s.Usage[hal.Memory] += float64(rss)
		}
		if p, ok := c.prev[t]; ok {
			if dt := now.Sub(p.at); dt > 0 {
				s.Usage[hal.CPU] += max(r.cpu-p.cpu, 0) / dt.Seconds()
				if r.hasIO && p.hasIO && r.ioBytes >= p.ioBytes {
					s.Usage[hal.IO] += float64(r.ioBytes-p.ioBytes) / dt.Seconds()
				}
				s.Interval = max(s.Interval, dt)
			}
		}
		c.prev[t] = r
	}
	slices.Sort(order)
	out := make([]Sample, 0, len(order))
	for _, f := range order {
		out = append(out, *byFunc[f])
	}
	return out, errs.ErrorOrNil()
}

// read returns the counters of one target and its resident bytes.
// procStat reads p's stat file. procfs v0.23.0 panics (slice bounds out of
// range) on a stat line whose ')' comes before its '(' — found by
// FuzzProcCollectorStat — so the panic is turned into an error: a malformed
// /proc file must never bring down the host.
func procStat(p procfs.Proc) (st procfs.ProcStat, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed stat line: %v", r)
		}
	}()
	return p.Stat()
}

func (c *ProcCollector) read(t ProcTarget, now time.Time) (procReading, int, error) {
	var p procfs.Proc
	var err error
	dir := fmt.Sprintf("%s/%d", c.root, t.PID)
	if t.TID == 0 {
		p, err = c.fs.Proc(t.PID)
	} else {
		dir = fmt.Sprintf("%s/%d/task/%d", c.root, t.PID, t.TID)
		p, err = c.fs.Thread(t.PID, t.TID)
	}
	if err != nil {
		return procReading{}, 0, err
	}
	st, err := procStat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return procReading{}, 0, err
		}
		return procReading{}, 0, fmt.Errorf("%s/stat: %w", dir, err)
	}
	r := procReading{at: now, cpu: st.CPUTime()}
	if t.TID == 0 {
		// /proc/<pid>/io needs the same user or CAP_SYS_PTRACE; without
		// it the process is still measured, without I/O.
		if pio, err := p.IO(); err == nil {
			r.ioBytes, r.hasIO = pio.ReadBytes+pio.WriteBytes, true
		} else if errors.Is(err, fs.ErrNotExist) {
			return procReading{}, 0, err
		} else if !errors.Is(err, fs.ErrPermission) {
			return procReading{}, 0, fmt.Errorf("%s/io: %w", dir, err)
		}
	}
	return r, st.ResidentMemory(), nil
}
