//go:build linux

package profile_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/internal/testchild"
	"github.com/updraft-dev/updraft/profile"
)

func TestCgroupCollectorV1Fixture(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := copyFixture(t, "testdata/cgroup/v1")
	c, err := profile.NewCgroupCollector(profile.CgroupOptions{Root: root, Clock: func() time.Time { return now },
		Targets: []profile.CgroupTarget{{Function: "app", Path: "/app"}}})
	require.NoError(t, err)
	require.Equal(t, profile.CgroupV1, c.Version())
	ctx := context.Background()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, 100e6, s[0].Usage[hal.Memory])
	require.Equal(t, 150e6, s[0].Usage[profile.MemoryPeak])

	now = now.Add(4 * time.Second)
	writeFile(t, filepath.Join(root, "cpuacct/app/cpuacct.usage"), "6000000000\n") // +6s of CPU
	writeFile(t, filepath.Join(root, "blkio/app/blkio.throttle.io_service_bytes"),
		"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Total 12288\n8:16 Read 400000\n8:16 Write 0\nTotal 412288\n")
	writeFile(t, filepath.Join(root, "unified/app/memory.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=400000\n")
	s, err = c.Collect(ctx)
	require.NoError(t, err)
	require.InDelta(t, 1.5, s[0].Usage[hal.CPU], 1e-9)
	require.InDelta(t, 100000.0, s[0].Usage[hal.IO], 1e-9)
	require.InDelta(t, 0.25, s[0].Usage[profile.PressureMemory], 1e-9)
	require.InDelta(t, 0.1, s[0].Usage[profile.PressureMemoryFull], 1e-9)
	require.Equal(t, 4*time.Second, s[0].Interval)

	writeFile(t, filepath.Join(root, "memory/app/memory.usage_in_bytes"), "12x\n")
	_, err = c.Collect(ctx)
	require.ErrorContains(t, err, filepath.Join(root, "memory/app/memory.usage_in_bytes")+":1")

	for _, dir := range []string{"cpuacct", "memory", "blkio", "unified"} {
		require.NoError(t, os.RemoveAll(filepath.Join(root, dir, "app")))
	}
	s, err = c.Collect(ctx)
	require.NoError(t, err, "a removed cgroup is skipped and counted")
	require.Empty(t, s)
	require.EqualValues(t, 1, c.Gone())
}

func TestCgroupCollectorV2Fixture(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := copyFixture(t, "testdata/cgroup/v2")
	c, err := profile.NewCgroupCollector(profile.CgroupOptions{Root: root, Clock: func() time.Time { return now },
		Targets: []profile.CgroupTarget{{Function: "app", Path: "app.slice/app"}, {Function: "app", Path: "app.slice/helper"}}})
	require.NoError(t, err)
	require.Equal(t, profile.CgroupV2, c.Version())
	ctx := context.Background()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, 200e6+10e6, s[0].Usage[hal.Memory], "two cgroups of one function add up")
	require.Equal(t, 300e6+20e6, s[0].Usage[profile.MemoryPeak])

	now = now.Add(2 * time.Second)
	writeFile(t, filepath.Join(root, "app.slice/app/cpu.stat"), "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n")
	writeFile(t, filepath.Join(root, "app.slice/app/io.stat"), "8:0 rbytes=2048 wbytes=4096 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=100000 wbytes=100000 rios=2 wios=2\n")
	writeFile(t, filepath.Join(root, "app.slice/app/cpu.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=600000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	s, err = c.Collect(ctx)
	require.NoError(t, err)
	require.InDelta(t, 1.0, s[0].Usage[hal.CPU], 1e-9) // 2s of CPU over 2s, helper idle
	require.InDelta(t, 100000.0, s[0].Usage[hal.IO], 1e-9)
	require.InDelta(t, 0.3, s[0].Usage[profile.PressureCPU], 1e-9)

	writeFile(t, filepath.Join(root, "app.slice/app/io.stat"), "8:0 rbytes=oops\n")
	_, err = c.Collect(ctx)
	require.ErrorContains(t, err, filepath.Join(root, "app.slice/app/io.stat")+":1")
}

func TestCgroupOf(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "42/cgroup"), "9:name=systemd:/\n4:memory:/jobs/42\n3:cpu,cpuacct:/jobs\n7:blkio:/\n0::/jobs/42\n")
	got, err := profile.CgroupOf(root, 42, "job")
	require.NoError(t, err)
	require.Equal(t, profile.CgroupTarget{Function: "job", Path: "/jobs/42", V1Paths: map[string]string{
		"cpuacct": "/jobs", "memory": "/jobs/42", "blkio": "/", "unified": "/jobs/42",
	}}, got)

	writeFile(t, filepath.Join(root, "43/cgroup"), "0::/a\nbroken\n")
	_, err = profile.CgroupOf(root, 43, "x")
	require.ErrorContains(t, err, filepath.Join(root, "43/cgroup")+":2")
	_, err = profile.CgroupOf(root, 44, "x")
	require.ErrorContains(t, err, "pid 44")

	self, err := profile.CgroupOf("", os.Getpid(), "self")
	require.NoError(t, err, "the real /proc/self/cgroup parses")
	require.NotEmpty(t, self.Path+self.V1Paths["memory"]+self.V1Paths["cpuacct"])
}

func TestNewCgroupCollectorRejectsBadInput(t *testing.T) {
	_, err := profile.NewCgroupCollector(profile.CgroupOptions{Root: "testdata/cgroup/v2", Targets: []profile.CgroupTarget{{Path: "x"}}})
	require.ErrorContains(t, err, "no function name")
	_, err = profile.NewCgroupCollector(profile.CgroupOptions{Root: "testdata/cgroup/v2", Targets: []profile.CgroupTarget{{Function: "f", Path: "../etc"}}})
	require.ErrorContains(t, err, `function "f"`)
	_, err = profile.NewCgroupCollector(profile.CgroupOptions{Root: "testdata/no-such-root"})
	require.ErrorContains(t, err, "no-such-root")
	_, err = profile.NewCgroupCollector(profile.CgroupOptions{Root: "testdata/cgroup/v2", Version: 7})
	require.ErrorContains(t, err, "version 7")
}

// selfCgroups returns this process's cgroup path per v1 hierarchy name
// (and "unified" for the v2 one), from /proc/self/cgroup.
func selfCgroups(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out["unified"] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	return out
}

// makeCgroup creates dir and removes it when the test ends (after the
// children in it have been stopped, since cleanups run in reverse).
func makeCgroup(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("removing test cgroup %s: %v", dir, err)
		}
	})
}

func moveInto(t *testing.T, dir string, pid int) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644))
}

// TestCgroupCollectorRealCgroup profiles a CPU burner and a memory holder
// through real cgroups created for the test, nested under this process's
// own, on whichever layout the machine has.
func TestCgroupCollectorRealCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root; run as root (CI does) to profile through a real cgroup")
	}
	root := profile.DefaultCgroupRoot
	self := selfCgroups(t)
	name := fmt.Sprintf("updraft-profile-test-%d", os.Getpid())
	v2 := false
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		v2 = true
	}

	burner := profile.CgroupTarget{Function: "burner", V1Paths: map[string]string{}}
	holder := profile.CgroupTarget{Function: "holder", V1Paths: map[string]string{}}
	var burnDirs, holdDirs []string
	if v2 {
		ctrl, err := os.ReadFile(filepath.Join(root, self["unified"], "cgroup.subtree_control"))
		if err != nil || !strings.Contains(string(ctrl), "memory") || !strings.Contains(string(ctrl), "cpu") {
			t.Skipf("cgroup v2: the cpu and memory controllers are not enabled for children of %s (%q)", self["unified"], ctrl)
		}
		burner.Path = filepath.Join(self["unified"], name+"-burn")
		holder.Path = filepath.Join(self["unified"], name+"-hold")
		burnDirs = []string{filepath.Join(root, burner.Path)}
		holdDirs = []string{filepath.Join(root, holder.Path)}
	} else {
		for _, ctl := range []string{"cpuacct", "memory"} {
			if _, err := os.Stat(filepath.Join(root, ctl)); err != nil {
				t.Skipf("cgroup v1: the %s controller is not mounted at %s", ctl, filepath.Join(root, ctl))
			}
		}
		hierarchies := []string{"cpuacct", "memory"}
		if _, err := os.Stat(filepath.Join(root, "unified", "cgroup.procs")); err == nil {
			hierarchies = append(hierarchies, "unified") // hybrid: per-cgroup PSI lives here
		}
		for _, h := range hierarchies {
			burner.V1Paths[h] = filepath.Join(self[h], name+"-burn")
			holder.V1Paths[h] = filepath.Join(self[h], name+"-hold")
			burnDirs = append(burnDirs, filepath.Join(root, h, burner.V1Paths[h]))
			holdDirs = append(holdDirs, filepath.Join(root, h, holder.V1Paths[h]))
		}
	}
	for _, d := range append(burnDirs, holdDirs...) {
		makeCgroup(t, d)
	}

	const held = 128 << 20
	b := testchild.Start(t, testchild.Burn(1))
	h := testchild.Start(t, testchild.HoldLater(held)) // says "started", holds after Proceed
	for _, d := range burnDirs {
		moveInto(t, d, b.PID())
	}
	for _, d := range holdDirs {
		moveInto(t, d, h.PID())
	}
	h.Proceed(t)
	h.WaitReady(t)

	c, err := profile.NewCgroupCollector(profile.CgroupOptions{Targets: []profile.CgroupTarget{burner, holder}})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Collect(ctx)
	require.NoError(t, err)
	cpu0, t0 := b.CPUTime(t), time.Now()
	<-time.After(measureWindow)
	cpu1, t1 := b.CPUTime(t), time.Now()
	samples, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, samples, 2)
	byName := map[string]profile.Sample{samples[0].Function: samples[0], samples[1].Function: samples[1]}

	truth := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	got := byName["burner"].Usage[hal.CPU]
	t.Logf("%s burner: cgroup %.3f cores, child's own account %.3f cores", c.Version(), got, truth)
	require.Greater(t, truth, 0.05, "the burner got almost no CPU; the machine is too loaded to measure")
	require.InEpsilon(t, truth, got, 0.20)

	mem := byName["holder"].Usage[hal.Memory]
	t.Logf("%s holder: cgroup memory %.1f MiB (peak %.1f MiB), held %d MiB", c.Version(), mem/(1<<20),
		byName["holder"].Usage[profile.MemoryPeak]/(1<<20), held>>20)
	require.InEpsilon(t, float64(held), mem, 0.20)
	require.GreaterOrEqual(t, byName["holder"].Usage[profile.MemoryPeak], mem*0.99)
	if _, ok := byName["burner"].Usage[profile.PressureCPU]; ok {
		p := byName["burner"].Usage[profile.PressureCPU]
		t.Logf("burner cgroup cpu pressure: %.2f", p)
		require.True(t, p >= 0 && p <= 1, "pressure %v out of 0..1", p)
	}
}

// TestCgroupCollectorRealUnifiedHierarchy reads the cgroup v2 files the
// kernel keeps for every cgroup (cpu.stat, *.pressure), through the v2
// code path, on whatever unified hierarchy this machine has: the whole of
// /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
func TestCgroupCollectorRealUnifiedHierarchy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root; run as root (CI does) to read a real cgroup v2")
	}
	root := profile.DefaultCgroupRoot
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		root = filepath.Join(profile.DefaultCgroupRoot, "unified")
		if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
			t.Skipf("no cgroup v2 hierarchy at %s or %s/unified", profile.DefaultCgroupRoot, profile.DefaultCgroupRoot)
		}
	}
	path := filepath.Join(selfCgroups(t)["unified"], fmt.Sprintf("updraft-profile-v2-test-%d", os.Getpid()))
	dir := filepath.Join(root, path)
	makeCgroup(t, dir)
	b := testchild.Start(t, testchild.Burn(1))
	moveInto(t, dir, b.PID())

	c, err := profile.NewCgroupCollector(profile.CgroupOptions{Root: root, Targets: []profile.CgroupTarget{{Function: "burner", Path: path}}})
	require.NoError(t, err)
	require.Equal(t, profile.CgroupV2, c.Version())
	ctx := context.Background()
	_, err = c.Collect(ctx)
	require.NoError(t, err)
	cpu0, t0 := b.CPUTime(t), time.Now()
	<-time.After(measureWindow)
	cpu1, t1 := b.CPUTime(t), time.Now()
	s, err := c.Collect(ctx)
	require.NoError(t, err)
	require.Len(t, s, 1)
	truth := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	got := s[0].Usage[hal.CPU]
	t.Logf("v2 at %s: cgroup %.3f cores, child's own account %.3f cores; usage %v", root, got, truth, s[0].Usage)
	require.Greater(t, truth, 0.05, "the burner got almost no CPU; the machine is too loaded to measure")
	require.InEpsilon(t, truth, got, 0.20)
	if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err == nil {
		require.Contains(t, s[0].Usage, profile.PressureCPU)
	}
}
