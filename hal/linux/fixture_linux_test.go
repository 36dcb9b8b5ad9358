package linux_test

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/cgroups"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
)

// fixture copies testdata/<name> to a temporary directory (the driver
// writes to it) and lets the cgroups library write to plain files there.
// Tests using it must not run in parallel with each other.
func fixture(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cgroups.TestMode = true // plain files stand in for cgroupfs
	t.Cleanup(func() { cgroups.TestMode = false })
	return dst
}

func fixtureConfig(root string, bindings ...linux.Binding) linux.Config {
	return linux.Config{
		Root:     filepath.Join(root, "cgroup"),
		Proc:     filepath.Join(root, "proc"),
		Sys:      filepath.Join(root, "sys"),
		Bindings: bindings,
	}
}

// readTree reads every file under dir, keyed by relative path, without
// the trailing newline (the kernel adds one to what it reads back; plain
// files keep what was written).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = strings.TrimSuffix(string(data), "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFixtureV2(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "v2")
	dev, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "1-2"}))
	if err != nil {
		t.Fatal(err)
	}
	capacity, err := dev.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 4 CPUs online, own cgroup's cpu.max allows 1.5 cores and its cpuset
	// 3; MemTotal 8000000 kB, own memory.max 1 GiB.
	if diff := cmp.Diff(hal.Vector{hal.CPU: 1.5, hal.Memory: 1 << 30}, capacity); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}

	before := readTree(t, filepath.Join(root, "cgroup"))
	undo, err := dev.Apply(ctx, []hal.Allocation{{
		Function:  "svc",
		Guarantee: hal.Vector{hal.CPU: 0.75, hal.Memory: 256 << 20},
		Limit:     hal.Vector{hal.CPU: 1.2, hal.Memory: 512 << 20},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := readTree(t, filepath.Join(root, "cgroup", "svc"))
	want := map[string]string{
		"cpu.weight":      "5000", // 0.75 of 1.5 cores, on the 1..10000 scale
		"cpu.max":         "120000 100000",
		"memory.max":      "536870912",
		"memory.swap.max": "0",
		"memory.min":      "268435456",
		"memory.low":      "268435456",
		"cpuset.cpus":     "1-2",
	}
	for file, value := range want {
		if got[file] != value {
			t.Errorf("after Apply, svc/%s = %q, want %q", file, got[file], value)
		}
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, readTree(t, filepath.Join(root, "cgroup"))); diff != "" {
		t.Errorf("after undo, files differ from before (-before +after):\n%s", diff)
	}
	if err := undo(ctx); err != nil {
		t.Errorf("second undo: %v, want nil", err)
	}

	// An allocation that names only CPU leaves memory alone.
	undo, err = dev.Apply(ctx, []hal.Allocation{{Function: "svc", Limit: hal.Vector{hal.CPU: 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	got = readTree(t, filepath.Join(root, "cgroup", "svc"))
	if got["cpu.max"] != "50000 100000" || got["cpu.weight"] != "1" || got["memory.max"] != "max" {
		t.Errorf("CPU-only allocation: cpu.max %q cpu.weight %q memory.max %q; want 50000 100000, 1, memory untouched", got["cpu.max"], got["cpu.weight"], got["memory.max"])
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}

	// Limits beyond what cgroups can express mean "no limit"; guarantees
	// beyond the capacity cannot be honoured and are refused.
	undo, err = dev.Apply(ctx, []hal.Allocation{{Function: "svc", Limit: hal.Vector{hal.CPU: 1e30, hal.Memory: 1e30}}})
	if err != nil {
		t.Fatal(err)
	}
	got = readTree(t, filepath.Join(root, "cgroup", "svc"))
	if got["cpu.max"] != "max 100000" || got["memory.max"] != "max" {
		t.Errorf("huge limits: cpu.max %q memory.max %q; want max 100000, max", got["cpu.max"], got["memory.max"])
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	before = readTree(t, filepath.Join(root, "cgroup"))
	_, err = dev.Apply(ctx, []hal.Allocation{{Function: "svc",
		Guarantee: hal.Vector{hal.Memory: 1e30}, Limit: hal.Vector{hal.Memory: 1e30}}})
	if !errors.Is(err, linux.ErrOverCapacity) || !strings.Contains(err.Error(), `resource "memory"`) {
		t.Errorf("a guarantee beyond capacity: err = %v, want linux.ErrOverCapacity naming \"memory\"", err)
	}
	if diff := cmp.Diff(before, readTree(t, filepath.Join(root, "cgroup"))); diff != "" {
		t.Errorf("a refused Apply changed files (-before +after):\n%s", diff)
	}

	u, err := dev.Usage(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hal.Vector{hal.CPU: 0, hal.Memory: 4096}, u); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestFixtureV1(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "v1")
	dev, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "3"}))
	if err != nil {
		t.Fatal(err)
	}
	capacity, err := dev.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hal.Vector{hal.CPU: 2.5, hal.Memory: 2 << 30}, capacity); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	before := readTree(t, filepath.Join(root, "cgroup"))
	undo, err := dev.Apply(ctx, []hal.Allocation{{
		Function:  "svc",
		Guarantee: hal.Vector{hal.CPU: 1.25, hal.Memory: 64 << 20},
		Limit:     hal.Vector{hal.CPU: 2, hal.Memory: 128 << 20},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := readTree(t, filepath.Join(root, "cgroup"))
	want := map[string]string{
		"cpu/svc/cpu.shares":                     "131072", // half of 2.5 cores, on the 2..262144 scale
		"cpu/svc/cpu.cfs_quota_us":               "200000",
		"cpu/svc/cpu.cfs_period_us":              "100000",
		"memory/svc/memory.limit_in_bytes":       "134217728",
		"memory/svc/memory.memsw.limit_in_bytes": "134217728",
		"memory/svc/memory.soft_limit_in_bytes":  "67108864",
		"cpuset/svc/cpuset.cpus":                 "3",
	}
	for file, value := range want {
		if got[file] != value {
			t.Errorf("after Apply, %s = %q, want %q", file, got[file], value)
		}
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, readTree(t, filepath.Join(root, "cgroup"))); diff != "" {
		t.Errorf("after undo, files differ from before (-before +after):\n%s", diff)
	}
	u, err := dev.Usage(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hal.Vector{hal.CPU: 0, hal.Memory: 8 << 20}, u); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// TestFixtureBadFiles: unreadable cgroup values give errors naming the
// file, not wrong capacities.
func TestFixtureBadFiles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ file, content, says string }{
		{"cgroup/app/cpu.max", "lots 100000", "cpu.max"},
		{"cgroup/app/cpu.max", "150000 0", "period"},
		{"cgroup/app/memory.max", "-5", "memory.max"},
		{"cgroup/app/cpuset.cpus.effective", "3-1", "reversed"},
		{"sys/devices/system/cpu/online", "", "none"},
	} {
		t.Run(tc.file+"="+tc.content, func(t *testing.T) {
			root := fixture(t, "v2")
			if err := os.WriteFile(filepath.Join(root, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			dev, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc"}))
			if err == nil {
				_, err = dev.Capacity(ctx)
			}
			wantErr(t, err, nil, tc.says)
		})
	}
}

// TestFixtureMissing: bindings to cgroups and processes that do not exist
// are refused by New.
func TestFixtureMissing(t *testing.T) {
	root := fixture(t, "v2")
	_, err := linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "nope"}))
	wantErr(t, err, linux.ErrNoCgroup, `function "svc"`, `"nope"`)
	_, err = linux.New(fixtureConfig(root, linux.Binding{Function: "svc", PIDs: []int{999999}}))
	wantErr(t, err, linux.ErrNoProcess, `function "svc"`, "pid 999999")
	_, err = linux.New(fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc", CPUs: "7"}))
	wantErr(t, err, nil, `function "svc"`, "CPU 7 is not online")
	_, err = linux.New(linux.Config{Root: t.TempDir(), Bindings: []linux.Binding{{Function: "svc", Cgroup: "svc"}}})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New on an empty root: %v, want an error saying no hierarchy is there", err)
	}
}

func TestFixtureIO(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		tree string
		want map[string]string // after Apply, by file under cgroup/
		// after undo, by file under cgroup/: the lines written to put
		// the old per-device values back (plain files keep only the
		// last line written; the kernel merges them)
		restored map[string]string
	}{
		{"v2", map[string]string{
			"svc/io.max":    "254:0 wbps=1048576", // the library writes rbps then wbps
			"svc/io.weight": "5000",               // half the bandwidth: blkio weight 505, converted to 1..10000
		}, map[string]string{"svc/io.max": "254:0 rbps=2097152 wbps=max", "svc/io.weight": "default 100"}},
		{"v1", map[string]string{
			"blkio/svc/blkio.throttle.read_bps_device":  "254:0 1048576",
			"blkio/svc/blkio.throttle.write_bps_device": "254:0 1048576",
			"blkio/svc/blkio.weight":                    "505",
		}, map[string]string{
			"blkio/svc/blkio.throttle.read_bps_device":  "254:0 0",
			"blkio/svc/blkio.throttle.write_bps_device": "254:0 0",
			"blkio/svc/blkio.weight":                    "500",
		}},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			root := fixture(t, tc.tree)
			cfg := fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc"})
			cfg.IO = &linux.IOConfig{Devices: []string{"254:0"}, Bandwidth: 2 << 20}
			dev, err := linux.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			capacity, err := dev.Capacity(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if capacity[hal.IO] != 2<<20 {
				t.Errorf("capacity io = %v, want the configured 2 MiB/s", capacity[hal.IO])
			}
			undo, err := dev.Apply(ctx, []hal.Allocation{{Function: "svc",
				Guarantee: hal.Vector{hal.IO: 1 << 20}, Limit: hal.Vector{hal.IO: 1 << 20}}})
			if err != nil {
				t.Fatal(err)
			}
			got := readTree(t, filepath.Join(root, "cgroup"))
			for file, want := range tc.want {
				if got[file] != want {
					t.Errorf("after Apply, %s = %q, want %q", file, got[file], want)
				}
			}
			if err := undo(ctx); err != nil {
				t.Fatal(err)
			}
			got = readTree(t, filepath.Join(root, "cgroup"))
			for file, want := range tc.restored {
				if got[file] != want {
					t.Errorf("after undo, %s = %q, want %q", file, got[file], want)
				}
			}
		})
	}

	root := fixture(t, "v2")
	cfg := fixtureConfig(root, linux.Binding{Function: "svc", Cgroup: "svc"})
	for _, io := range []linux.IOConfig{
		{Devices: []string{"254:0"}, Bandwidth: math.NaN()},
		{Devices: []string{"sda"}, Bandwidth: 1},
		{Devices: []string{"9:9"}, Bandwidth: 1},
		{Bandwidth: 1},
	} {
		cfg.IO = &io
		_, err := linux.New(cfg)
		wantErr(t, err, nil, `"io"`)
	}
}
