package cgroupfs_test

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

func TestDetectFixtures(t *testing.T) {
	l, err := cgroupfs.Detect("testdata/v2")
	if err != nil || !l.V2 {
		t.Fatalf("Detect(v2) = %+v, %v; want v2", l, err)
	}
	l, err = cgroupfs.Detect("testdata/v1")
	if err != nil || l.V2 {
		t.Fatalf("Detect(v1) = %+v, %v; want v1", l, err)
	}
	if !l.Has(cgroupfs.Memory) || l.Has(cgroupfs.CPUSet) {
		t.Errorf("v1 Has(memory)=%v Has(cpuset)=%v; want true, false", l.Has(cgroupfs.Memory), l.Has(cgroupfs.CPUSet))
	}
	_, err = cgroupfs.Detect("testdata/empty")
	if !errors.Is(err, cgroupfs.ErrNoCgroups) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "testdata/empty") {
		t.Errorf("Detect(empty) = %v; want ErrNoCgroups naming the root", err)
	}
	if _, err := cgroupfs.Detect("testdata/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Detect(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestUsageFixtures(t *testing.T) {
	for _, tc := range []struct {
		root                 string
		cpu                  time.Duration
		mem, peak, limit, io uint64
	}{
		{"testdata/v2", 2500 * time.Millisecond, 1 << 20, 2 << 20, math.MaxUint64, 4096 + 8192 + 100},
		{"testdata/v1", 3 * time.Second, 4096, 8192, 9223372036854771712, 30},
	} {
		l, err := cgroupfs.Detect(tc.root)
		if err != nil {
			t.Fatal(err)
		}
		cpu, err := l.CPUUsage("app")
		check(t, tc.root+" cpu", uint64(cpu), uint64(tc.cpu), err)
		mem, err := l.MemoryUsage("app")
		check(t, tc.root+" memory", mem, tc.mem, err)
		peak, err := l.MemoryPeak("app")
		check(t, tc.root+" peak", peak, tc.peak, err)
		limit, err := l.MemoryLimit("app")
		check(t, tc.root+" limit", limit, tc.limit, err)
		io, err := l.IOBytes("app")
		check(t, tc.root+" io", io, tc.io, err)
		p, err := cgroupfs.CgroupPressure(l.PressureDir("app"), "cpu")
		if err != nil || p.Some.Total != 123 || p.Some.Avg10 != 0.5 || p.Full == nil {
			t.Errorf("%s cpu.pressure = %+v, %v", tc.root, p, err)
		}
		if _, err := l.MemoryUsage("gone"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s memory of a missing group = %v; want fs.ErrNotExist", tc.root, err)
		}
	}
}

func check(t *testing.T, what string, got, want uint64, err error) {
	t.Helper()
	if err != nil || got != want {
		t.Errorf("%s = %d, %v; want %d", what, got, err, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fn   func([]byte) error
		want string
	}{
		{"", pressure, `f: no "some" line`},
		{"full avg10=1 avg60=0 total=1\n", pressure, `no "some" line`},
		{"some avg60=1 total=3\n", pressure, "f:1: some line: no avg10"},
		{"some avg10=1\n", pressure, "no total"},
		{"some avg10=abc total=1\n", pressure, `"abc"`},
		{"some avg10=101.5 total=1\n", pressure, "0-100"},
		{"\nsome avg10=-1 total=0\n", pressure, "f:2:"},
		{"some avg10=NaN total=0\n", pressure, "NaN"},
		{"some avg10=1 total=x\n", pressure, `total="x"`},
		{"x rbytes=1\n", iostat, `f:1: "x" is not a MAJ:MIN device`},
		{"8:0 rbytes=-1\n", iostat, `rbytes="-1"`},
		{"8:0 Read x\n", blkio, `f:1: bytes "x"`},
		{"8:0 Read\n", blkio, `"MAJ:MIN Op bytes"`},
		{"", uintFile, "f:1: empty"},
		{"1\n2\n", uintFile, "f:2: more than one line"},
		{"abc", uintFile, `f:1: "abc"`},
		{"a 1\nusage_usec x\n", keyed, "f:2:"},
	} {
		err := tc.fn([]byte(tc.in))
		if err == nil || !errors.Is(err, cgroupfs.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse %q = %v; want ErrMalformed with %q", tc.in, err, tc.want)
		}
	}
	st, err := cgroupfs.ParsePressure("f", []byte("some avg10=7.5 avg60=1 avg300=0 total=9 new=1\nnewkind avg10=1\n"))
	if err != nil || st.Some.Avg10 != 7.5 || st.Some.Total != 9 || st.Full != nil {
		t.Errorf("ParsePressure with an unknown field and line = %+v, %v", st, err)
	}
}

func pressure(b []byte) error { _, err := cgroupfs.ParsePressure("f", b); return err }
func iostat(b []byte) error   { _, err := cgroupfs.ParseIOStat("f", b); return err }
func blkio(b []byte) error    { _, err := cgroupfs.ParseBlkio("f", b); return err }
func uintFile(b []byte) error { _, err := cgroupfs.ParseUint("f", b); return err }
func keyed(b []byte) error    { _, _, err := cgroupfs.ParseKey("f", b, "usage_usec"); return err }

// TestRealHost reads this machine's /proc/pressure and /sys/fs/cgroup
// (cgroup v1 hybrid or v2). It needs root, cgroups and PSI, and fails
// rather than skips without them.
func TestRealHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup file")
	}
	for _, res := range cgroupfs.Resources {
		st, err := cgroupfs.SystemPressure("/proc", res)
		if err != nil || st.Some == nil {
			t.Fatalf("SystemPressure(%s) = %+v, %v", res, st, err)
		}
	}
	if _, err := cgroupfs.SystemPressure("/proc", "gpu"); err == nil || !strings.Contains(err.Error(), "gpu") {
		t.Errorf("SystemPressure(gpu) = %v; want an error naming gpu", err)
	}
	l, err := cgroupfs.Detect(cgroupfs.DefaultRoot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("layout %+v", l)
	// The root group: cpuacct.usage and memory.usage_in_bytes on v1,
	// cpu.stat on v2 (the v2 root has no memory.current).
	cpu, err := l.CPUUsage("")
	if err != nil || cpu <= 0 {
		t.Errorf("CPUUsage(root) = %v, %v; want > 0", cpu, err)
	}
	own := ownGroup(t, l)
	if !l.V2 {
		mem, err := l.MemoryUsage(own)
		if err != nil || mem == 0 {
			t.Errorf("MemoryUsage(%q) = %d, %v; want > 0", own, mem, err)
		}
		if _, err := l.MemoryLimit(own); err != nil {
			t.Error(err)
		}
		if _, err := l.IOBytes(""); err != nil {
			t.Error(err)
		}
	}
	// PSI per cgroup: the unified hierarchy of a hybrid host, the root on v2.
	for _, res := range cgroupfs.Resources {
		st, err := cgroupfs.CgroupPressure(l.PressureDir(""), res)
		if err != nil || st.Some == nil {
			t.Errorf("CgroupPressure(%s, %s) = %+v, %v", l.PressureDir(""), res, st, err)
		}
	}
}

// ownGroup returns this process's memory cgroup (v1) or unified group (v2).
func ownGroup(t *testing.T, l cgroupfs.Layout) string {
	t.Helper()
	groups, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	self, err := groups.Self()
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := self.Cgroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, cg := range cgs {
		for _, c := range cg.Controllers {
			if c == cgroupfs.Memory && !l.V2 {
				return filepath.Clean(cg.Path)
			}
		}
		if l.V2 && cg.HierarchyID == 0 {
			return filepath.Clean(cg.Path)
		}
	}
	t.Fatalf("no memory cgroup in /proc/self/cgroup: %+v", cgs)
	return ""
}
