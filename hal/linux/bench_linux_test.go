package linux_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/internal/testchild"
)

// BenchmarkApply measures applying and undoing one function's allocation
// (CPU guarantee and limit, memory guarantee and limit) on real cgroups,
// beside a baseline that writes the same cgroup files directly with
// os.WriteFile (read the old values, write the new, write the old back).
//
//	cgroup:  the function is bound to an existing cgroup
//	pids:    the function is bound to a process, so the driver also
//	         creates a cgroup, moves the process in and out, and removes it
func BenchmarkApply(b *testing.B) {
	v2 := requireRealCgroups(b)
	if v2 {
		b.Skip("hal/linux: the baseline of BenchmarkApply writes cgroup v1 files; on v2 only the driver would run")
	}
	ctx := context.Background()
	existing := uniqueName("bench")
	parent := uniqueName("bench-parent")
	for _, dir := range hierarchies(false, existing) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { removeCgroupTree(b, false, existing); removeCgroupTree(b, false, parent) })
	idle := testchild.Start(b, testchild.Hold(0)).PID() // waits on stdin: idle

	dev, err := linux.New(linux.Config{Parent: parent, Bindings: []linux.Binding{
		{Function: "cg", Cgroup: existing},
		{Function: "pid", PIDs: []int{idle}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	alloc := func(fn string) []hal.Allocation {
		return []hal.Allocation{{Function: fn,
			Guarantee: hal.Vector{hal.CPU: 0.5, hal.Memory: 64 << 20},
			Limit:     hal.Vector{hal.CPU: 1, hal.Memory: 256 << 20}}}
	}
	run := func(b *testing.B, fn string) {
		for b.Loop() {
			undo, err := dev.Apply(ctx, alloc(fn))
			if err != nil {
				b.Fatal(err)
			}
			if err := undo(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cgroup/driver", func(b *testing.B) { run(b, "cg") })
	b.Run("cgroup/baseline=os.WriteFile", func(b *testing.B) {
		for b.Loop() {
			writeDirectly(b, existing)
		}
	})
	b.Run("pids/driver", func(b *testing.B) { run(b, "pid") })
	b.Run("pids/baseline=os.WriteFile", func(b *testing.B) {
		rel := filepath.Join(parent, "pid")
		for b.Loop() {
			for _, c := range []string{"cpu", "memory"} {
				if err := os.MkdirAll(filepath.Join(cgroupRoot, c, rel), 0o755); err != nil {
					b.Fatal(err)
				}
			}
			writeDirectly(b, rel)
			for _, c := range []string{"cpu", "memory"} {
				write(b, filepath.Join(cgroupRoot, c, rel, "cgroup.procs"), strconv.Itoa(idle))
				write(b, filepath.Join(cgroupRoot, c, "cgroup.procs"), strconv.Itoa(idle))
				for _, dir := range []string{filepath.Join(cgroupRoot, c, rel), filepath.Join(cgroupRoot, c, parent)} {
					if err := os.Remove(dir); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}

// writeDirectly sets and restores the files the driver writes for one
// allocation on cgroup v1, with no checks and no library.
func writeDirectly(b *testing.B, rel string) {
	cpu := filepath.Join(cgroupRoot, "cpu", rel)
	mem := filepath.Join(cgroupRoot, "memory", rel)
	files := []struct{ dir, file, value string }{
		{cpu, "cpu.shares", "65536"},
		{cpu, "cpu.cfs_period_us", "100000"},
		{cpu, "cpu.cfs_quota_us", "100000"},
		{mem, "memory.limit_in_bytes", "268435456"},
		{mem, "memory.memsw.limit_in_bytes", "268435456"},
		{mem, "memory.soft_limit_in_bytes", "67108864"},
	}
	old := make([]string, len(files))
	for i, f := range files {
		data, err := os.ReadFile(filepath.Join(f.dir, f.file))
		if err != nil {
			b.Fatal(err)
		}
		old[i] = string(data)
		write(b, filepath.Join(f.dir, f.file), f.value)
	}
	for i := len(files) - 1; i >= 0; i-- {
		write(b, filepath.Join(files[i].dir, files[i].file), old[i])
	}
}

func write(b *testing.B, path, value string) {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		b.Fatal(err)
	}
}
