package linux_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/testchild"
)

const cgroupRoot = "/sys/fs/cgroup"

// requireRealCgroups skips unless the test runs as root on a machine with
// cgroup v1 cpu and memory hierarchies or a cgroup v2 hierarchy with the
// cpu and memory controllers.
func requireRealCgroups(t testing.TB) (v2 bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("hal/linux: real cgroup tests need root (CI runs them as root)")
	}
	if data, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		f := strings.Fields(string(data))
		if !contains(f, "cpu") || !contains(f, "memory") {
			t.Skipf("hal/linux: cgroup v2 at %s lacks the cpu or memory controller (has %q)", cgroupRoot, f)
		}
		return true
	}
	for _, c := range []string{"cpu", "cpuacct", "memory"} {
		if _, err := os.Stat(filepath.Join(cgroupRoot, c, "cgroup.procs")); err != nil {
			t.Skipf("hal/linux: cgroup v1 %s controller is not mounted at %s: %v", c, cgroupRoot, err)
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var testSeq atomic.Int64

// uniqueName returns a cgroup name no other test run uses.
func uniqueName(what string) string {
	return fmt.Sprintf("updraft-test-%d-%d-%s", os.Getpid(), testSeq.Add(1), what)
}

// hierarchies returns the directories of cgroup rel in the hierarchies
// the driver writes to.
func hierarchies(v2 bool, rel string) []string {
	if v2 {
		return []string{filepath.Join(cgroupRoot, rel)}
	}
	dirs := []string{
		filepath.Join(cgroupRoot, "cpu", rel),
		filepath.Join(cgroupRoot, "cpuacct", rel),
		filepath.Join(cgroupRoot, "memory", rel),
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "blkio", "cgroup.procs")); err == nil {
		dirs = append(dirs, filepath.Join(cgroupRoot, "blkio", rel))
	}
	return dirs
}

// makeCgroup creates cgroup rel, as a host would before binding to it,
// and removes it when the test ends (moving any process left in it to the
// hierarchy root first).
func makeCgroup(t *testing.T, v2 bool, rel string) {
	t.Helper()
	for _, dir := range hierarchies(v2, rel) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeCgroupTree(t, v2, rel) })
}

// removeCgroupTree removes rel and everything below it in every
// hierarchy, evacuating processes to the root.
func removeCgroupTree(t testing.TB, v2 bool, rel string) {
	dirs := hierarchies(v2, rel)
	if !v2 {
		dirs = append(dirs, filepath.Join(cgroupRoot, "cpuset", rel))
	}
	for _, dir := range dirs {
		root := filepath.Join(dir, strings.Repeat("../", strings.Count(rel, "/")+1))
		var subdirs []string
		_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				subdirs = append(subdirs, p)
			}
			return nil
		})
		for i := len(subdirs) - 1; i >= 0; i-- {
			if data, err := os.ReadFile(filepath.Join(subdirs[i], "cgroup.procs")); err == nil {
				for _, pid := range strings.Fields(string(data)) {
					_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
				}
			}
			if err := syscall.Rmdir(subdirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("cleanup: rmdir %s: %v", subdirs[i], err)
			}
		}
	}
}

// moveInto writes pid into cgroup rel in every hierarchy.
func moveInto(t *testing.T, v2 bool, rel string, pid int) {
	t.Helper()
	for _, dir := range hierarchies(v2, rel) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// cpuCores measures the cores each process uses over window.
func cpuCores(t *testing.T, window time.Duration, pids ...int) []float64 {
	t.Helper()
	before := make([]time.Duration, len(pids))
	for i, pid := range pids {
		before[i] = testchild.ProcCPUTime(t, pid)
	}
	start := time.Now()
	<-time.After(window) // a measurement window, not synchronisation
	elapsed := time.Since(start).Seconds()
	cores := make([]float64, len(pids))
	for i, pid := range pids {
		cores[i] = (testchild.ProcCPUTime(t, pid) - before[i]).Seconds() / elapsed
	}
	return cores
}

// settingsOf reads every setting file of the cgroup directories dirs (not
// counters, statistics or member lists, which change on their own), keyed
// by path. A directory that does not exist reads as absent.
func settingsOf(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			out[dir] = "<absent>"
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || volatile(e.Name()) {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue // write-only files such as memory.force_empty
			}
			out[filepath.Join(dir, e.Name())] = string(data)
		}
	}
	return out
}

// volatile reports whether a cgroup file changes without anyone writing it.
func volatile(name string) bool {
	for _, s := range []string{"stat", "usage", "failcnt", "pressure", "events", "procs", "tasks", "threads", "current", "peak", "slabinfo", "oom_control", "effective", "io_service", "io_wait", "io_queued", "io_merged", "time", "sectors", "dequeue"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return strings.HasPrefix(name, "cpuacct.")
}

// cgroupOf returns the /proc/<pid>/cgroup lines of a process.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// requireGone reports every directory in dirs that still exists: cgroups
// the driver created must be removed by its undo.
func requireGone(t testing.TB, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("created cgroup %s still exists after undo (stat: %v)", dir, err)
		}
	}
}

// newCgroup creates a cgroup named after what in every hierarchy (see
// makeCgroup) and returns its path.
func newCgroup(t *testing.T, v2 bool, what string) string {
	t.Helper()
	rel := uniqueName(what)
	makeCgroup(t, v2, rel)
	return rel
}

// newParent names a parent cgroup for a test's driver and removes its
// tree, whatever the driver left, when the test ends.
func newParent(t *testing.T, v2 bool) string {
	parent := uniqueName("parent")
	t.Cleanup(func() { removeCgroupTree(t, v2, parent) })
	return parent
}
