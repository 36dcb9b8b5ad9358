package linux_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/internal/testchild"
)

// TestThreadBinding (cgroup v1): a bound thread moves alone; its process's
// other threads stay, and undo moves it back.
func TestThreadBinding(t *testing.T) {
	if requireRealCgroups(t) {
		t.Skip("hal/linux: cgroup v2 moves whole processes; thread bindings are v1 only")
	}
	ctx := context.Background()
	parent := uniqueName("parent")
	t.Cleanup(func() { removeCgroupTree(t, false, parent) })
	c := testchild.Start(t, testchild.Burn(2))
	tid := otherThread(t, c.PID())
	threadCgroup := func(id int) string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/cgroup", c.PID(), id))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	leaderBefore, threadBefore := threadCgroup(c.PID()), threadCgroup(tid)
	dev, err := linux.New(linux.Config{Parent: parent, Bindings: []linux.Binding{{Function: "worker", PIDs: []int{tid}}}})
	if err != nil {
		t.Fatal(err)
	}
	undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "worker", Limit: hal.Vector{hal.CPU: 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo(ctx) })
	if got := threadCgroup(tid); !strings.Contains(got, parent+"/worker") {
		t.Errorf("thread %d after Apply is in\n%s\nwant %s/worker", tid, got, parent)
	}
	if got := threadCgroup(c.PID()); got != leaderBefore {
		t.Errorf("leader thread moved too:\n%s", got)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if got := threadCgroup(tid); got != threadBefore {
		t.Errorf("thread %d after undo is in\n%s\nwant\n%s", tid, got, threadBefore)
	}
}

// otherThread returns a thread of pid that is not its leader.
func otherThread(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil && tid != pid {
			return tid
		}
	}
	t.Fatalf("process %d has no thread besides its leader", pid)
	return 0
}

// TestCPUSetPinning: a binding's CPUs become the cpuset of its cgroup and
// the affinity of its process; undo restores both.
func TestCPUSetPinning(t *testing.T) {
	v2 := requireRealCgroups(t)
	if runtime.NumCPU() < 2 {
		t.Skip("hal/linux: pinning test needs 2 CPUs")
	}
	if v2 {
		if data, _ := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers")); !strings.Contains(string(data), "cpuset") {
			t.Skip("hal/linux: cgroup v2 cpuset controller not available")
		}
	} else if _, err := os.Stat(filepath.Join(cgroupRoot, "cpuset", "cgroup.procs")); err != nil {
		t.Skip("hal/linux: cgroup v1 cpuset controller not mounted")
	}
	ctx := context.Background()
	parent := newParent(t, v2)
	c := testchild.Start(t, testchild.Burn(1))
	affinity := func() string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatal("no Cpus_allowed_list in /proc/pid/status")
		return ""
	}
	before := affinity()
	dev, err := linux.New(linux.Config{Parent: parent, Bindings: []linux.Binding{{Function: "pinned", PIDs: []int{c.PID()}, CPUs: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "pinned", Guarantee: hal.Vector{hal.CPU: 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo(ctx) })
	if got := affinity(); got != "1" {
		t.Errorf("affinity after Apply = %q, want \"1\"", got)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if got := affinity(); got != before {
		t.Errorf("affinity after undo = %q, want %q", got, before)
	}
	created := hierarchies(v2, parent)
	if !v2 {
		created = append(created, filepath.Join(cgroupRoot, "cpuset", parent))
	}
	requireGone(t, created...)
}

// TestStackedApplies: a second Apply on top of a first is undone to the
// first's values, and the first's undo then restores the original.
func TestStackedApplies(t *testing.T) {
	v2 := requireRealCgroups(t)
	ctx := context.Background()
	existing := newCgroup(t, v2, "bound")
	parent := newParent(t, v2)
	c := testchild.Start(t, testchild.Hold(0))
	dev, err := linux.New(linux.Config{Parent: parent, Bindings: []linux.Binding{
		{Function: "cg", Cgroup: existing},
		{Function: "pid", PIDs: []int{c.PID()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	watched := append(hierarchies(v2, existing), hierarchies(v2, parent)...)
	watched = append(watched, hierarchies(v2, parent+"/pid")...)
	original := settingsOf(t, watched...)
	alloc := func(cpu float64) []hal.Allocation {
		return []hal.Allocation{
			{Function: "cg", Guarantee: hal.Vector{hal.CPU: cpu / 2}, Limit: hal.Vector{hal.CPU: cpu, hal.Memory: 128 << 20}},
			{Function: "pid", Guarantee: hal.Vector{hal.CPU: cpu / 4, hal.Memory: 16 << 20}, Limit: hal.Vector{hal.CPU: cpu / 2, hal.Memory: 64 << 20}},
		}
	}
	undo1, err := dev.Apply(ctx, alloc(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo1(ctx) })
	first := settingsOf(t, watched...)
	undo2, err := dev.Apply(ctx, alloc(0.5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo2(ctx) })
	if cmp.Equal(first, settingsOf(t, watched...)) {
		t.Fatal("second Apply changed nothing")
	}
	if err := undo2(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, settingsOf(t, watched...)); diff != "" {
		t.Errorf("after the second undo (-first apply +now):\n%s", diff)
	}
	if err := undo1(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(original, settingsOf(t, watched...)); diff != "" {
		t.Errorf("after both undos (-original +now):\n%s", diff)
	}
}

// TestConcurrentApplies: Applies and undos from several goroutines, on
// one device and on two, leave the original state behind.
func TestConcurrentApplies(t *testing.T) {
	v2 := requireRealCgroups(t)
	ctx := context.Background()
	var bindings []linux.Binding
	var dirs []string
	for i := range 4 {
		cg := uniqueName("bound")
		makeCgroup(t, v2, cg)
		bindings = append(bindings, linux.Binding{Function: fmt.Sprint("f", i), Cgroup: cg})
		dirs = append(dirs, hierarchies(v2, cg)...)
	}
	// Two devices, two functions each: Applies are serialised within a
	// device and must be safe across devices.
	var devs []*linux.Device
	for _, half := range [][]linux.Binding{bindings[:2], bindings[2:]} {
		dev, err := linux.New(linux.Config{Parent: uniqueName("parent"), Bindings: half})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, dev, dev)
	}
	before := settingsOf(t, dirs...)
	var wg sync.WaitGroup
	errs := make(chan error, len(bindings))
	for i, b := range bindings {
		dev := devs[i]
		wg.Go(func() {
			for range 5 {
				undo, err := dev.Apply(ctx, []hal.Allocation{{Function: b.Function, Limit: hal.Vector{hal.CPU: float64(i+1) / 4, hal.Memory: float64(i+1) * (32 << 20)}}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := dev.Usage(ctx, b.Function); err != nil {
					errs <- err
				}
				if err := undo(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if diff := cmp.Diff(before, settingsOf(t, dirs...)); diff != "" {
		t.Errorf("after concurrent applies and undos (-before +after):\n%s", diff)
	}
}

// TestApplyCanceled: a canceled context stops Apply before anything
// changes.
func TestApplyCanceled(t *testing.T) {
	v2 := requireRealCgroups(t)
	existing := newCgroup(t, v2, "bound")
	dev, err := linux.New(linux.Config{Bindings: []linux.Binding{{Function: "f", Cgroup: existing}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := settingsOf(t, hierarchies(v2, existing)...)
	if _, err := dev.Apply(ctx, []hal.Allocation{{Function: "f", Limit: hal.Vector{hal.CPU: 1}}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context: %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(before, settingsOf(t, hierarchies(v2, existing)...)); diff != "" {
		t.Errorf("canceled Apply changed files:\n%s", diff)
	}
}

// TestIOLimit: with block devices configured, an I/O limit becomes a
// read and a write throttle on each device, and undo lifts them again.
func TestIOLimit(t *testing.T) {
	v2 := requireRealCgroups(t)
	var st syscall.Stat_t
	if err := syscall.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	// The whole disk that holds the root file system (throttles apply
	// to disks, not partitions).
	device := fmt.Sprintf("%d:%d", unixMajor(st.Dev), unixMinor(st.Dev))
	if _, err := os.Stat(filepath.Join("/sys/dev/block", device, "partition")); err == nil {
		t.Skipf("hal/linux: / is on partition %s; the test needs a whole disk", device)
	}
	if !v2 {
		if _, err := os.Stat(filepath.Join(cgroupRoot, "blkio", "cgroup.procs")); err != nil {
			t.Skip("hal/linux: cgroup v1 blkio controller not mounted")
		}
	}
	ctx := context.Background()
	existing := newCgroup(t, v2, "bound")
	dev, err := linux.New(linux.Config{
		Bindings: []linux.Binding{{Function: "f", Cgroup: existing}},
		IO:       &linux.IOConfig{Devices: []string{device}, Bandwidth: 100 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := settingsOf(t, hierarchies(v2, existing)...)
	undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "f", Guarantee: hal.Vector{hal.IO: 1 << 20}, Limit: hal.Vector{hal.IO: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo(ctx) })
	files := []string{filepath.Join(cgroupRoot, "blkio", existing, "blkio.throttle.read_bps_device"), filepath.Join(cgroupRoot, "blkio", existing, "blkio.throttle.write_bps_device")}
	want := device + " 1048576"
	if v2 {
		files = []string{filepath.Join(cgroupRoot, existing, "io.max")}
		want = device + " rbps=1048576 wbps=1048576"
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("%s = %q, want it to hold %q", f, data, want)
		}
	}
	// A guarantee of 1% of the bandwidth is the lowest weights but one
	// (10 + 1% of 990), where the kernel has a weight (BFQ).
	if !v2 {
		if data, err := os.ReadFile(filepath.Join(cgroupRoot, "blkio", existing, "blkio.bfq.weight")); err == nil && strings.TrimSpace(string(data)) != "20" {
			t.Errorf("blkio.bfq.weight = %q, want 20", data)
		}
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, settingsOf(t, hierarchies(v2, existing)...)); diff != "" {
		t.Errorf("after undo (-before +after):\n%s", diff)
	}
}

func unixMajor(dev uint64) uint32 { return uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff) }
func unixMinor(dev uint64) uint32 { return uint32(dev&0xff) | uint32((dev>>12)&^0xff) }

// TestV2HierarchyWithoutControllers runs the cgroup v2 code path on the
// real unified hierarchy of a v1 "hybrid" machine (/sys/fs/cgroup/unified,
// which carries no controllers): creating the cgroup, moving the process
// in and back, and removing the cgroup work for real; an allocation that
// needs a controller the hierarchy lacks is refused by name and leaves
// nothing behind.
func TestV2HierarchyWithoutControllers(t *testing.T) {
	if requireRealCgroups(t) {
		t.Skip("hal/linux: the machine is cgroup v2; the other tests cover it")
	}
	unified := filepath.Join(cgroupRoot, "unified")
	if _, err := os.Stat(filepath.Join(unified, "cgroup.controllers")); err != nil {
		t.Skip("hal/linux: no cgroup v2 hierarchy at /sys/fs/cgroup/unified on this v1 machine")
	}
	ctx := context.Background()
	parent := uniqueName("parent")
	dir := filepath.Join(unified, parent)
	t.Cleanup(func() {
		_ = syscall.Rmdir(filepath.Join(dir, "f"))
		_ = syscall.Rmdir(dir)
	})
	c := testchild.Start(t, testchild.Burn(1))
	before := cgroupOf(t, c.PID())
	dev, err := linux.New(linux.Config{Root: unified, Parent: parent, Bindings: []linux.Binding{{Function: "f", PIDs: []int{c.PID()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Capacity(ctx); err != nil {
		t.Fatal(err)
	}

	_, err = dev.Apply(ctx, []hal.Allocation{{Function: "f", Limit: hal.Vector{hal.CPU: 1}}})
	wantErr(t, err, nil, `function "f"`, `controller "cpu" is not available`)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Apply left %s behind (stat: %v)", dir, err)
	}

	undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo(ctx) })
	if got := cgroupOf(t, c.PID()); !strings.Contains(got, "0::/"+parent+"/f\n") {
		t.Errorf("after Apply the child is in\n%s\nwant 0::/%s/f", got, parent)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if got := cgroupOf(t, c.PID()); got != before {
		t.Errorf("after undo the child is in\n%s\nwant\n%s", got, before)
	}
	requireGone(t, dir)
}
