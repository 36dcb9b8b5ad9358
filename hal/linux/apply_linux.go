package linux

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"

	"github.com/updraft-dev/updraft/hal"
)

// Ranges of the cgroup values allocations map to.
const (
	maxShares = 262144 // cgroup v1 cpu.shares range is [2, 262144]
	minShares = 2
	maxWeight = 10000 // cgroup v2 cpu.weight range is [1, 10000]
	minWeight = 1
	maxQuota  = 1 << 40 // µs; a larger CPU limit is no limit (the kernel caps quotas near 2^44)
)

// apply runs with allocs validated. It records every change in a journal
// and, on error, reverses the journal before returning.
func (d *Device) apply(ctx context.Context, allocs []hal.Allocation, onRecord func([]byte) error) (hal.Undo, error) {
	capacity, err := d.Capacity(ctx)
	if err != nil {
		return nil, fmt.Errorf("linux: apply: %w", err)
	}
	cores := capacity[hal.CPU]
	if err := overCapacity(allocs, capacity); err != nil {
		return nil, err
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	j := &journal{log: d.log, onRecord: onRecord}
	fail := func(err error) (hal.Undo, error) {
		if uerr := j.undo(context.WithoutCancel(ctx)); uerr != nil {
			return nil, multierror.Append(err, fmt.Errorf("linux: apply: undoing the partial apply: %w", uerr))
		}
		return nil, err
	}

	sorted := d.mergeShared(allocs)
	slices.SortFunc(sorted, func(a, b bound) int { return strings.Compare(a.Function, b.Function) })
	var parentCPU, parentMemory float64 // guarantees of the functions in Parent
	var parentNamesCPU, parentNamesMemory bool
	parentExisted := d.parentExists()
	for _, ab := range sorted {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("linux: apply: %w", err))
		}
		a, b := ab.Allocation, ab.binding
		if err := d.applyOne(j, b, a, cores); err != nil {
			return fail(err)
		}
		if len(b.PIDs) > 0 {
			if names(a, hal.CPU) {
				parentNamesCPU = true
				parentCPU += a.Guarantee[hal.CPU]
			}
			if names(a, hal.Memory) {
				parentNamesMemory = true
				parentMemory += a.Guarantee[hal.Memory]
			}
		}
	}
	if parentNamesCPU || parentNamesMemory {
		// Parent gets its children's total weight (and, on v2, memory
		// protection) so their guarantees hold against the rest of the
		// machine; its own limits are left alone.
		v := values{cpu: parentNamesCPU, memory: parentNamesMemory && d.layout.v2}
		v.weight = weightOf(d.layout, parentCPU, cores)
		v.memGuarantee = -1
		if parentMemory < v1Unlimited {
			v.memGuarantee = int64(parentMemory)
		}
		if err := d.set(j, d.cfg.Parent, v, parentExisted); err != nil {
			return fail(fmt.Errorf("linux: apply: parent cgroup %q: %w", d.cfg.Parent, err))
		}
	}
	d.log.Info("linux: applied", "functions", len(sorted), "changes", len(j.steps))
	return hal.Once(func(ctx context.Context) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		return j.undo(ctx)
	}), nil
}

// bound is an allocation with the binding it is enforced through.
type bound struct {
	hal.Allocation
	binding Binding
}

// mergeShared pairs each allocation with its binding, the allocations of
// functions bound to one cgroup replaced by one for them all (its
// Function and its binding's name them all, joined by "+", for messages):
// per resource any of them names, the sum of their guarantees, and the
// sum of their limits when each that names the resource limits it (no
// limit otherwise).
func (d *Device) mergeShared(allocs []hal.Allocation) []bound {
	out := make([]bound, 0, len(allocs))
	at := map[string]int{} // cgroup → index in out
	for _, a := range allocs {
		b := d.bindings[a.Function]
		if b.Cgroup == "" {
			out = append(out, bound{a, b})
			continue
		}
		cg := strings.TrimPrefix(b.Cgroup, "/")
		i, shared := at[cg]
		if !shared {
			at[cg] = len(out)
			out = append(out, bound{hal.Allocation{Function: a.Function, Guarantee: a.Guarantee.Clone(), Limit: a.Limit.Clone()}, b})
			continue
		}
		m := &out[i].Allocation
		m.Function += "+" + a.Function
		out[i].binding.Function = m.Function
		for _, r := range resourcesOf(&a, m) {
			nameA, nameM := names(a, r), names(*m, r)
			limA, okA := a.Limit[r]
			limM, okM := m.Limit[r]
			if m.Guarantee == nil {
				m.Guarantee = hal.Vector{}
			}
			m.Guarantee[r] += a.Guarantee[r]
			switch {
			case nameA && !okA, nameM && !okM: // one of them has no limit
				delete(m.Limit, r)
			case okA && okM:
				m.Limit[r] = limA + limM
			case okA: // only a names r
				if m.Limit == nil {
					m.Limit = hal.Vector{}
				}
				m.Limit[r] = limA
			}
		}
	}
	return out
}

// resourcesOf lists the resources either allocation names.
func resourcesOf(a, b *hal.Allocation) []hal.Resource {
	seen := map[hal.Resource]bool{}
	var out []hal.Resource
	for _, v := range []hal.Vector{a.Guarantee, a.Limit, b.Guarantee, b.Limit} {
		for r := range v {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	slices.Sort(out)
	return out
}

// names reports whether a names r as a guarantee or a limit.
func names(a hal.Allocation, r hal.Resource) bool {
	_, g := a.Guarantee[r]
	_, l := a.Limit[r]
	return g || l
}

// values are the cgroup values one allocation maps to.
type values struct {
	cpu          bool   // set the weight
	weight       uint64 // cpu.shares (v1) or cpu.weight (v2)
	quotaSet     bool   // set the quota
	quota        int64  // CFS quota in µs per CPUPeriod; -1 unlimited
	memory       bool   // set the memory guarantee
	memGuarantee int64  // bytes; -1 everything
	memLimitSet  bool   // set the memory limit
	memLimit     int64  // bytes; -1 unlimited
	cpus         string // cpuset.cpus; "" leaves it alone
	io           bool   // set the I/O limit (and weight where the kernel has one)
	ioLimit      uint64 // bytes/s for reads and for writes on each device; 0 none
	ioWeight     uint16 // blkio weight in [10, 1000]
}

// v2Controllers returns the cgroup v2 controllers writing v needs.
func (v values) v2Controllers() []string {
	var out []string
	if v.cpu || v.quotaSet {
		out = append(out, "cpu")
	}
	if v.memory || v.memLimitSet {
		out = append(out, "memory")
	}
	if v.cpus != "" {
		out = append(out, "cpuset")
	}
	if v.io {
		out = append(out, "io")
	}
	return out
}

// valuesOf maps an allocation to cgroup values; see the package doc.
func valuesOf(l layout, a hal.Allocation, b Binding, cores float64, io *IOConfig) values {
	v := values{cpu: names(a, hal.CPU), memory: names(a, hal.Memory), cpus: b.CPUs}
	v.quotaSet, v.memLimitSet = v.cpu, v.memory
	v.weight = weightOf(l, a.Guarantee[hal.CPU], cores)
	v.quota = -1
	if lim, ok := a.Limit[hal.CPU]; ok && lim*CPUPeriod < maxQuota {
		v.quota = int64(math.Round(lim * CPUPeriod))
	}
	v.memLimit = -1
	if lim, ok := a.Limit[hal.Memory]; ok && lim < v1Unlimited {
		v.memLimit = int64(lim)
	}
	v.memGuarantee = -1
	if g := a.Guarantee[hal.Memory]; g < v1Unlimited {
		v.memGuarantee = int64(g)
	}
	if io != nil && names(a, hal.IO) {
		v.io = true
		if lim, ok := a.Limit[hal.IO]; ok && lim < v1Unlimited {
			v.ioLimit = uint64(max(1, math.Round(lim)))
		}
		v.ioWeight = uint16(10 + math.Round(math.Min(1, a.Guarantee[hal.IO]/io.Bandwidth)*990))
	}
	return v
}

// weightOf maps a CPU guarantee to a weight proportional to its fraction
// of capacity, in the controller's range.
func weightOf(l layout, guarantee, cores float64) uint64 {
	frac := 0.0
	if cores > 0 {
		frac = math.Min(1, guarantee/cores)
	}
	lo, hi := float64(minShares), float64(maxShares)
	if l.v2 {
		lo, hi = minWeight, maxWeight
	}
	return uint64(math.Max(lo, math.Round(frac*hi)))
}

// applyOne enforces one function's allocation.
// overCapacity refuses allocations whose guarantees together exceed the
// capacity: the kernel could not honour them.
func overCapacity(allocs []hal.Allocation, capacity hal.Vector) error {
	total := hal.Vector{}
	for _, a := range allocs {
		total = total.Add(a.Guarantee)
	}
	for _, r := range total.Resources() {
		if c, ok := capacity[r]; ok && total[r] > c*(1+1e-9) {
			return fmt.Errorf("linux: apply: resource %q: guarantees total %s, more than the capacity %s: %w",
				r, hal.FormatQuantity(r, total[r]), hal.FormatQuantity(r, c), ErrOverCapacity)
		}
	}
	return nil
}

func (d *Device) applyOne(j *journal, b Binding, a hal.Allocation, cores float64) error {
	v := valuesOf(d.layout, a, b, cores, d.cfg.IO)
	if b.Cgroup != "" {
		if err := d.set(j, b.Cgroup, v, true); err != nil {
			return fmt.Errorf("linux: apply: function %q cgroup %q: %w", b.Function, b.Cgroup, err)
		}
		return nil
	}
	rel := path.Join(d.cfg.Parent, b.Function)
	moves, err := d.planMoves(b)
	if err != nil {
		return fmt.Errorf("linux: apply: function %q: %w", b.Function, err)
	}
	existed, err := d.create(j, b, rel, moves, v.v2Controllers())
	if err != nil {
		return fmt.Errorf("linux: apply: function %q: create cgroup %q: %w", b.Function, rel, err)
	}
	if err := d.set(j, rel, v, existed); err != nil {
		return fmt.Errorf("linux: apply: function %q cgroup %q: %w", b.Function, rel, err)
	}
	for _, m := range moves {
		for _, c := range d.controllersOf(b) {
			home := d.layout.dir(c, m.origin[c])
			if err := j.record(&movedTask{t: m.t, home: home}); err != nil {
				return err
			}
			if err := moveTask(m.t, d.layout.dir(c, rel)); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					err = errors.Join(ErrNoProcess, err)
				}
				return fmt.Errorf("linux: apply: function %q pid %d: %w", b.Function, m.t.pid, err)
			}
		}
	}
	return nil
}

// move is a task to move and the cgroups it is in now.
type move struct {
	t      task
	origin map[string]string
}

// planMoves looks every bound task up, failing if one is gone.
func (d *Device) planMoves(b Binding) ([]move, error) {
	var moves []move
	for _, pid := range b.PIDs {
		t, err := d.task(pid)
		if err != nil {
			return nil, fmt.Errorf("pid %d: %w", pid, err)
		}
		origin, err := d.taskCgroups(t)
		if err != nil {
			return nil, fmt.Errorf("pid %d: %w", pid, err)
		}
		for _, c := range d.controllersOf(b) {
			if _, ok := origin[c]; !ok {
				return nil, fmt.Errorf("pid %d: not in any %s cgroup", pid, hierarchyName(c))
			}
		}
		moves = append(moves, move{t: t, origin: origin})
	}
	return moves, nil
}

// create makes cgroup rel (and any missing ancestors) in every hierarchy
// the binding uses, recording each directory it made, and records a drain
// of rel to where the binding's first task came from. existed reports
// whether rel was already there everywhere (a repeated Apply).
func (d *Device) create(j *journal, b Binding, rel string, moves []move, v2Controllers []string) (existed bool, err error) {
	existed = true
	for _, c := range d.controllersOf(b) {
		made, err := d.createIn(j, c, rel, v2Controllers)
		if err != nil {
			return false, err
		}
		if made > 0 {
			existed = false
		}
		if len(moves) > 0 {
			if err := j.record(&drain{dir: d.layout.dir(c, rel), home: d.layout.dir(c, moves[0].origin[c])}); err != nil {
				return false, err
			}
		}
		d.log.Debug("linux: cgroup ready", "cgroup", d.layout.dir(c, rel), "created", made)
	}
	return existed, nil
}

// createIn makes rel and its missing ancestors in one hierarchy, top
// first, and returns how many directories it made. On cgroup v2 it first
// has each level's parent hand the needed controllers down.
func (d *Device) createIn(j *journal, controller, rel string, v2Controllers []string) (int, error) {
	made := 0
	parent := d.layout.hierarchyRoot(controller)
	for _, p := range slices.Backward(ancestors(rel)) {
		dir := d.layout.dir(controller, p)
		if d.layout.v2 {
			if err := enableControllers(j, parent, v2Controllers); err != nil {
				return made, err
			}
		}
		parent = dir
		if pathExists(dir) {
			continue
		}
		if err := j.record(&createdDir{path: dir, shared: p != rel}); err != nil {
			return made, err
		}
		made++
		if controller == ctrlCPUSet {
			// A v1 cpuset cgroup takes no task until its cpus and mems
			// are set; the library copies them from the parent.
			if err := (&fs.CpusetGroup{}).ApplyDir(dir, &cgroups.Resources{}, -1); err != nil {
				return made, err
			}
			continue
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return made, err
		}
	}
	return made, nil
}

// enableControllers makes the cgroup v2 directory dir hand the controllers
// in want down to its children, recording those it enabled.
func enableControllers(j *journal, dir string, want []string) error {
	if len(want) == 0 {
		return nil
	}
	enabled, err := cgroups.ReadFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	available, err := cgroups.ReadFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range want {
		if slices.Contains(strings.Fields(enabled), c) {
			continue
		}
		if !slices.Contains(strings.Fields(available), c) {
			return fmt.Errorf("controller %q is not available in %s (cgroup.controllers: %q)", c, dir, strings.TrimSpace(available))
		}
		missing = append(missing, c)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := j.record(&enabledControllers{dir: dir, names: missing}); err != nil {
		return err
	}
	return cgroups.WriteFile(dir, "cgroup.subtree_control", "+"+strings.Join(missing, " +"))
}

// part is one resource's share of a cgroup change: the files to save
// first, the values to write through the library, and writes the library
// cannot express.
type part struct {
	resource hal.Resource // or "cpuset"; names the part in errors
	dir      string       // the cgroup directory written
	files    []string     // saved before writing, restored by undo
	io       bool         // also save the per-device I/O limits of dir
	res      cgroups.Resources
	after    []fileWrite
}

type fileWrite struct{ file, value string }

// set writes v into cgroup rel, one resource at a time through the
// library's v1 or v2 manager, after saving the files it will change when
// the cgroup existed before this Apply (created ones are removed on undo
// instead). Errors name the resource being written.
func (d *Device) set(j *journal, rel string, v values, existed bool) error {
	var parts []part
	if d.layout.v2 {
		parts = d.partsV2(d.layout.dir("", rel), v)
	} else {
		parts = d.partsV1(rel, v)
	}
	if existed {
		for _, p := range parts {
			for _, f := range p.files {
				if err := j.saveFile(p.dir, f); err != nil {
					return fmt.Errorf("resource %s: %w", p.resource, err)
				}
			}
			if p.io {
				if err := d.saveIO(j, p.dir); err != nil {
					return fmt.Errorf("resource %s: %w", p.resource, err)
				}
			}
		}
	}
	d.log.Debug("linux: set", "cgroup", rel, "values", v)
	for _, p := range parts {
		if err := d.write(p); err != nil {
			return fmt.Errorf("resource %s: %w", p.resource, err)
		}
	}
	return nil
}

// write applies one part through the library's manager for its layout.
func (d *Device) write(p part) error {
	cg := &cgroups.Cgroup{Resources: &cgroups.Resources{}}
	var m cgroups.Manager
	var err error
	if d.layout.v2 {
		m, err = fs2.NewManager(cg, p.dir)
	} else {
		controller := map[hal.Resource]string{hal.CPU: ctrlCPU, hal.Memory: ctrlMemory, "cpuset": ctrlCPUSet, hal.IO: ctrlBlkio}[p.resource]
		m, err = fs.NewManager(cg, map[string]string{controller: p.dir})
	}
	if err != nil {
		return err
	}
	if err := setResources(m, &p.res); err != nil {
		return err
	}
	for _, w := range p.after {
		if err := cgroups.WriteFile(p.dir, w.file, w.value); err != nil {
			return err
		}
	}
	return nil
}

// partsV2 maps v to the files of cgroup v2 directory dir.
func (d *Device) partsV2(dir string, v values) []part {
	var parts []part
	if v.cpu || v.quotaSet {
		p := part{resource: hal.CPU, dir: dir}
		if v.cpu {
			p.res.CpuWeight = v.weight
			p.files = append(p.files, "cpu.weight")
		}
		if v.quotaSet {
			p.res.CpuQuota, p.res.CpuPeriod = v.quota, CPUPeriod
			p.files = append(p.files, "cpu.max")
		}
		parts = append(parts, p)
	}
	if v.memory || v.memLimitSet {
		p := part{resource: hal.Memory, dir: dir}
		if v.memLimitSet {
			// memory+swap equal to memory: swap.max 0.
			p.res.Memory, p.res.MemorySwap = v.memLimit, v.memLimit
			p.files = append(p.files, "memory.max", "memory.swap.max")
		}
		if v.memory {
			g := strconv.FormatInt(v.memGuarantee, 10)
			if v.memGuarantee < 0 {
				g = "max"
			}
			p.res.Unified = map[string]string{"memory.min": g, "memory.low": g}
			p.files = append(p.files, "memory.min", "memory.low")
		}
		parts = append(parts, p)
	}
	if v.cpus != "" {
		parts = append(parts, part{resource: "cpuset", dir: dir, files: []string{"cpuset.cpus"}, res: cgroups.Resources{CpusetCpus: v.cpus}})
	}
	if v.io {
		p := part{resource: hal.IO, dir: dir, io: true}
		if weightFile := firstFile(dir, "io.bfq.weight", "io.weight"); weightFile != "" {
			p.res.BlkioWeight = v.ioWeight
			p.files = append(p.files, weightFile)
		}
		if v.ioLimit > 0 {
			d.ioResources(&p.res, v.ioLimit)
		} else {
			for _, dev := range d.cfg.IO.Devices {
				p.after = append(p.after, fileWrite{"io.max", dev + " rbps=max wbps=max"})
			}
		}
		parts = append(parts, p)
	}
	return parts
}

// partsV1 maps v to the files of cgroup rel in the v1 hierarchies.
func (d *Device) partsV1(rel string, v values) []part {
	l := d.layout
	var parts []part
	if v.cpu || v.quotaSet {
		p := part{resource: hal.CPU, dir: l.dir(ctrlCPU, rel)}
		if v.cpu {
			p.res.CpuShares = v.weight
			p.files = append(p.files, "cpu.shares")
		}
		if v.quotaSet {
			p.res.CpuQuota, p.res.CpuPeriod = v.quota, CPUPeriod
			p.files = append(p.files, "cpu.cfs_period_us", "cpu.cfs_quota_us")
		}
		parts = append(parts, p)
	}
	if v.memory || v.memLimitSet {
		p := part{resource: hal.Memory, dir: l.dir(ctrlMemory, rel)}
		if v.memLimitSet {
			p.res.Memory = v.memLimit
			p.files = append(p.files, "memory.limit_in_bytes")
			if hasFile(p.dir, "memory.memsw.limit_in_bytes") {
				// memory+swap equal to memory, so swap cannot
				// extend the limit.
				p.res.MemorySwap = v.memLimit
				p.files = append(p.files, "memory.memsw.limit_in_bytes")
			}
		}
		if v.memory {
			// Written directly: the library treats a zero reservation
			// as "unset", and a function guaranteed no memory gets a
			// soft limit of 0 (reclaimed first).
			p.files = append(p.files, "memory.soft_limit_in_bytes")
			p.after = append(p.after, fileWrite{"memory.soft_limit_in_bytes", strconv.FormatInt(v.memGuarantee, 10)})
		}
		parts = append(parts, p)
	}
	if v.cpus != "" {
		parts = append(parts, part{resource: "cpuset", dir: l.dir(ctrlCPUSet, rel), files: []string{"cpuset.cpus"}, res: cgroups.Resources{CpusetCpus: v.cpus}})
	}
	if v.io {
		p := part{resource: hal.IO, dir: l.dir(ctrlBlkio, rel), io: true}
		d.ioResources(&p.res, v.ioLimit) // a rate of 0 lifts the limit on v1
		if weightFile := firstFile(p.dir, "blkio.bfq.weight", "blkio.weight"); weightFile != "" {
			// Written directly: the library remembers, process-wide,
			// the first weight file name it saw.
			p.files = append(p.files, weightFile)
			p.after = append(p.after, fileWrite{weightFile, strconv.FormatUint(uint64(v.ioWeight), 10)})
		}
		parts = append(parts, p)
	}
	return parts
}

// parentExists reports whether Parent exists in the cpu hierarchy (or the
// v2 hierarchy).
func (d *Device) parentExists() bool {
	return pathExists(d.layout.dir(ctrlCPU, d.cfg.Parent))
}

// firstFile returns the first of files that exists in dir, or "".
func firstFile(dir string, files ...string) string {
	for _, f := range files {
		if hasFile(dir, f) {
			return f
		}
	}
	return ""
}

// v1SetMu serialises Set calls into the cgroups library across devices:
// its v1 manager shares one blkio subsystem value process-wide, which
// caches a file name on first use without synchronisation. It guards the
// library's state, not ours.
var v1SetMu sync.Mutex

func setResources(m cgroups.Manager, r *cgroups.Resources) error {
	if _, v1 := m.(*fs.Manager); v1 {
		v1SetMu.Lock()
		defer v1SetMu.Unlock()
	}
	return m.Set(r)
}
