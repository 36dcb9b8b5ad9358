package linux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/procfs"
	"syscall"

	"github.com/updraft-dev/updraft/hal"
)

// Device is a Linux host's CPUs and memory (and, with [Config.IO], block
// I/O bandwidth), partitioned with cgroups between the functions its
// [Config] binds. Create it with [New]; the zero
// value is not usable. Its methods are safe for concurrent use.
type Device struct {
	cfg      Config // with defaults filled in; never modified
	layout   layout
	proc     procfs.FS
	log      *slog.Logger
	bindings map[string]Binding // by function; never modified

	mu sync.Mutex // serialises Apply and undo, which read then write cgroup files
}

var (
	_ hal.Device = (*Device)(nil)
	_ hal.Meter  = (*Device)(nil)
)

// New checks cfg against the machine and returns a device for it: the
// cgroup hierarchies must be mounted at cfg.Root, every bound cgroup and
// process must exist, every pinned CPU must be online, and this process
// must be allowed to write the cgroup files the bindings need. Errors name
// the function and the cgroup, process or field at fault; they wrap
// [ErrNoCgroup], [ErrNoProcess] or fs.ErrPermission where those apply.
func New(cfg Config) (*Device, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l, err := detectLayout(cfg.Root)
	if err != nil {
		return nil, err
	}
	proc, err := procfs.NewFS(cfg.Proc)
	if err != nil {
		return nil, fmt.Errorf("linux: config field \"proc\": %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Device{cfg: cfg, layout: l, proc: proc, log: log, bindings: map[string]Binding{}}
	online, err := d.onlineCPUs()
	if err != nil {
		return nil, err
	}
	if cfg.IO != nil {
		if err := d.checkDevices(); err != nil {
			return nil, err
		}
	}
	for _, b := range cfg.Bindings {
		if err := d.checkBinding(b, online); err != nil {
			return nil, err
		}
		d.bindings[b.Function] = b
	}
	return d, nil
}

// checkBinding verifies that b's cgroup or processes exist, that its CPUs
// are online, and that the files it needs are writable.
func (d *Device) checkBinding(b Binding, online []int) error {
	if b.CPUs != "" {
		cpus, _ := ParseCPUList(b.CPUs) // checked by Config.check
		for _, c := range cpus {
			if _, ok := slices.BinarySearch(online, c); !ok {
				return fmt.Errorf("linux: function %q field \"cpus\": CPU %d is not online (online: %s)", b.Function, c, formatCPUList(online))
			}
		}
	}
	controllers := d.controllersOf(b)
	if b.Cgroup != "" {
		for _, c := range controllers {
			dir := d.layout.dir(c, b.Cgroup)
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("linux: function %q cgroup %q (%s): %w", b.Function, b.Cgroup, dir, errors.Join(ErrNoCgroup, err))
			}
			if err := writable(dir, knobFile(d.layout, c)); err != nil {
				return fmt.Errorf("linux: function %q cgroup %q: %w", b.Function, b.Cgroup, err)
			}
		}
		return nil
	}
	for _, pid := range b.PIDs {
		t, err := d.task(pid)
		if err != nil {
			return fmt.Errorf("linux: function %q pid %d: %w", b.Function, pid, err)
		}
		if d.layout.v2 && t.tgid != pid {
			return fmt.Errorf("linux: function %q pid %d: is a thread of process %d; cgroup v2 moves whole processes, bind %d instead", b.Function, pid, t.tgid, t.tgid)
		}
		origin, err := d.taskCgroups(t)
		if err != nil {
			return fmt.Errorf("linux: function %q pid %d: %w", b.Function, pid, err)
		}
		for _, c := range controllers {
			home, ok := origin[c]
			if !ok {
				return fmt.Errorf("linux: function %q pid %d: not in any %s cgroup (is the %s controller mounted?)", b.Function, pid, hierarchyName(c), hierarchyName(c))
			}
			if err := writable(d.layout.dir(c, home), t.procsFile()); err != nil {
				return fmt.Errorf("linux: function %q pid %d: cannot move it back later: %w", b.Function, pid, err)
			}
		}
	}
	for _, c := range controllers {
		anc := d.layout.dir(c, d.cfg.Parent)
		for !pathExists(anc) && anc != d.layout.hierarchyRoot(c) {
			anc = filepath.Dir(anc)
		}
		if err := writable(anc, ""); err != nil {
			return fmt.Errorf("linux: function %q: cannot create cgroup %s: %w", b.Function, d.layout.dir(c, filepath.Join(d.cfg.Parent, b.Function)), err)
		}
	}
	return nil
}

// controllersOf returns the hierarchies binding b touches.
func (d *Device) controllersOf(b Binding) []string {
	return d.layout.controllers(b.CPUs != "", d.cfg.IO != nil)
}

// knobFile is a file every cgroup of controller has and Apply writes.
func knobFile(l layout, controller string) string {
	switch {
	case l.v2:
		return "cgroup.procs"
	case controller == ctrlMemory:
		return "memory.limit_in_bytes"
	case controller == ctrlCPUSet:
		return "cpuset.cpus"
	case controller == ctrlBlkio:
		return "blkio.throttle.read_bps_device"
	default:
		return "cpu.shares"
	}
}

func hierarchyName(controller string) string {
	if controller == "" {
		return "cgroup v2"
	}
	return controller
}

// writable returns an error wrapping fs.ErrPermission unless this process
// may write dir/file (dir itself when file is "").
func writable(dir, file string) error {
	p := filepath.Join(dir, file)
	if err := syscall.Access(p, 2 /* W_OK */); err != nil {
		return &os.PathError{Op: "write access", Path: p, Err: err}
	}
	return nil
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// onlineCPUs reads the online CPUs from sysfs.
func (d *Device) onlineCPUs() ([]int, error) {
	p := filepath.Join(d.cfg.Sys, "devices/system/cpu/online")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("linux: online CPUs: %w", err)
	}
	cpus, err := ParseCPUList(string(data))
	if err != nil {
		return nil, fmt.Errorf("linux: online CPUs (%s): %w", p, err)
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("linux: online CPUs (%s): none", p)
	}
	return cpus, nil
}

func formatCPUList(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// Apply enforces allocs on the bound cgroups; see the package
// documentation for how each resource maps to cgroup values. It either
// applies every allocation or, on error, undoes what it had done and
// returns an error naming the function and resource at fault.
func (d *Device) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("linux: apply: %w", err)
	}
	if err := d.checkAllocations(allocs); err != nil {
		return nil, err
	}
	return d.apply(ctx, allocs, nil)
}

// ApplyJournaled implements [hal.Journaled]: it is Apply, and every change
// it makes — a cgroup file's old value, a cgroup it creates, a controller
// it enables, a process it moves and where from — is first added to the
// record it hands journal, so that [Device.UndoRecord] in another process
// restores exactly what was there before.
func (d *Device) ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if journal == nil {
		return nil, errors.New("linux: apply: journal is nil")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("linux: apply: %w", err)
	}
	if err := d.checkAllocations(allocs); err != nil {
		return nil, err
	}
	return d.apply(ctx, allocs, journal)
}

// UndoRecord implements [hal.Journaled]: it reverses, newest first, every
// change a record of ApplyJournaled lists (as Undo does). It is
// idempotent.
func (d *Device) UndoRecord(ctx context.Context, record []byte) error {
	steps, err := decodeSteps(record, d.cfg.Root)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return (&journal{log: d.log, steps: steps}).undo(ctx)
}

// checkAllocations validates allocs before anything changes.
func (d *Device) checkAllocations(allocs []hal.Allocation) error {
	seen := map[string]bool{}
	for _, a := range allocs {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("linux: apply: %w", err)
		}
		if _, ok := d.bindings[a.Function]; !ok {
			return fmt.Errorf("linux: apply: function %q has no binding: %w", a.Function, hal.ErrUnknownFunction)
		}
		if seen[a.Function] {
			return fmt.Errorf("linux: apply: function %q has two allocations", a.Function)
		}
		seen[a.Function] = true
		for _, v := range []hal.Vector{a.Guarantee, a.Limit} {
			for _, r := range v.Resources() {
				switch {
				case r == hal.CPU || r == hal.Memory:
				case r == hal.IO && d.cfg.IO == nil:
					return fmt.Errorf("linux: apply: function %q resource %q: %w (set the config field \"io\" to enforce it)", a.Function, r, ErrUnsupportedResource)
				case r == hal.IO:
				default:
					return fmt.Errorf("linux: apply: function %q resource %q: %w (this driver enforces %q, %q and, when configured, %q)", a.Function, r, ErrUnsupportedResource, hal.CPU, hal.Memory, hal.IO)
				}
			}
		}
		if l, ok := a.Limit[hal.CPU]; ok && l < MinCPULimit {
			return fmt.Errorf("linux: apply: function %q resource %q: limit %s is below the smallest enforceable %s", a.Function, hal.CPU, hal.FormatQuantity(hal.CPU, l), hal.FormatQuantity(hal.CPU, MinCPULimit))
		}
		if l, ok := a.Limit[hal.Memory]; ok && l < MinMemoryLimit {
			return fmt.Errorf("linux: apply: function %q resource %q: limit %s is below the smallest enforceable %s", a.Function, hal.Memory, hal.FormatQuantity(hal.Memory, l), hal.FormatQuantity(hal.Memory, MinMemoryLimit))
		}
	}
	return nil
}
