package linux_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/haltest"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/internal/testchild"
)

// TestConformanceFixture runs the hal driver conformance suite on the
// fixture trees (any user): the observable state is every file of the
// cgroup tree, and a device opened again on the same tree undoes from the
// journaled record.
func TestConformanceFixture(t *testing.T) {
	for _, name := range []string{"v1", "v2"} {
		t.Run(name, func(t *testing.T) {
			var cfg linux.Config // of the device open returned last
			var cur *testing.T
			haltest.TestDevice(t, func(tb testing.TB) hal.Device {
				cur = tb.(*testing.T)
				root := fixture(cur, name)
				padLike(cur, filepath.Join(root, "cgroup"), "svc", "app")
				cfg = fixtureConfig(root, linux.Binding{Function: "app", Cgroup: "app"}, linux.Binding{Function: "svc", Cgroup: "svc"})
				dev, err := linux.New(cfg)
				if err != nil {
					tb.Fatal(err)
				}
				return dev
			}, haltest.Options{
				Functions: []string{"app", "svc"},
				State:     func(hal.Device) (any, error) { return readTree(cur, cfg.Root), nil },
				Reopen:    func(testing.TB, hal.Device) (hal.Device, error) { return linux.New(cfg) },
			})
		})
	}
}

// padLike gives cgroup to, in each hierarchy under root where it exists,
// every file cgroup like has and it lacks: a real cgroupfs has every
// file of a controller in every cgroup, which the fixture's "app" does
// not (the driver cannot undo the creation of a file, and never needs to).
func padLike(t *testing.T, root, like, to string) {
	t.Helper()
	dirs := []string{root}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(root, e.Name()))
			}
		}
	}
	for _, h := range dirs {
		if _, err := os.Stat(filepath.Join(h, to)); err != nil {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(h, like))
		for _, f := range files {
			dst := filepath.Join(h, to, f.Name())
			if _, err := os.Stat(dst); err == nil || f.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(h, like, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestConformanceReal (root; CI runs it) runs the suite on real cgroups:
// one function bound to an existing cgroup, one to a running process the
// driver moves into a cgroup it creates. The observable state is every
// setting of both cgroups in every hierarchy (absent ones included) and
// the process's cgroups.
func TestConformanceReal(t *testing.T) {
	v2 := requireRealCgroups(t)
	existing := newCgroup(t, v2, "conformance")
	parent := newParent(t, v2)
	child := testchild.Start(t, testchild.Burn(1))
	cfg := linux.Config{Parent: parent, Bindings: []linux.Binding{
		{Function: "existing", Cgroup: existing},
		{Function: "bound", PIDs: []int{child.PID()}},
	}}
	watched := append(hierarchies(v2, existing), hierarchies(v2, parent)...)
	watched = append(watched, hierarchies(v2, filepath.Join(parent, "bound"))...)
	var cur *testing.T
	type state struct {
		Settings map[string]string
		Cgroups  string // the bound process's /proc/<pid>/cgroup
	}
	haltest.TestDevice(t, func(tb testing.TB) hal.Device {
		cur = tb.(*testing.T)
		dev, err := linux.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return dev
	}, haltest.Options{
		Functions: []string{"existing", "bound"},
		State: func(hal.Device) (any, error) {
			return state{settingsOf(cur, watched...), cgroupOf(cur, child.PID())}, nil
		},
		Reopen: func(testing.TB, hal.Device) (hal.Device, error) { return linux.New(cfg) },
	})
	requireGone(t, hierarchies(v2, parent)...)
}
