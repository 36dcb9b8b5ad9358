package cgroupfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultRoot is where cgroups are mounted unless told otherwise.
const DefaultRoot = "/sys/fs/cgroup"

// Errors callers branch on, checked with errors.Is.
var (
	// ErrNoCgroups: the root is neither a cgroup v2 hierarchy nor holds
	// cgroup v1 hierarchies.
	ErrNoCgroups = errors.New("cgroupfs: no cgroup hierarchy")
	// ErrMalformed: a cgroup or pressure file does not read as its format.
	ErrMalformed = errors.New("cgroupfs: malformed file")
)

// Cgroup v1 controller hierarchies under the root, and the cgroup2 mount
// of a hybrid host.
const (
	CPU     = "cpu"
	CPUAcct = "cpuacct"
	Memory  = "memory"
	Blkio   = "blkio"
	CPUSet  = "cpuset"
	Unified = "unified"
)

// Layout is where the cgroup hierarchies of one machine live. The zero
// value is not useful; build it with [Detect] or as a literal in tests.
type Layout struct {
	Root string
	V2   bool // one unified hierarchy at Root; else v1, one per controller
}

// Detect returns the layout under root: v2 when root holds
// cgroup.controllers, v1 when it holds at least one v1 controller
// hierarchy (cpu, cpuacct, memory or blkio). Anything else is an error
// naming root and wrapping [ErrNoCgroups] and fs.ErrNotExist.
func Detect(root string) (Layout, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return Layout{}, fmt.Errorf("cgroupfs: root: %w", err)
	}
	if !fi.IsDir() {
		return Layout{}, fmt.Errorf("cgroupfs: root %s is not a directory: %w", root, ErrNoCgroups)
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return Layout{Root: root, V2: true}, nil
	}
	for _, c := range []string{CPU, CPUAcct, Memory, Blkio} {
		if fi, err := os.Stat(filepath.Join(root, c)); err == nil && fi.IsDir() {
			return Layout{Root: root}, nil
		}
	}
	return Layout{}, fmt.Errorf("cgroupfs: %s has no cgroup.controllers (v2) and no cpu, cpuacct, memory or blkio hierarchy (v1): %w (%w)", root, ErrNoCgroups, fs.ErrNotExist)
}

// Has reports whether the v1 hierarchy controller exists; on v2 it is
// always true (controllers are enabled per group there).
func (l Layout) Has(controller string) bool {
	if l.V2 {
		return true
	}
	fi, err := os.Stat(filepath.Join(l.Root, controller))
	return err == nil && fi.IsDir()
}

// Dir returns the directory of cgroup rel (relative to the hierarchy root)
// in controller's hierarchy; on v2 the controller is ignored.
func (l Layout) Dir(controller, rel string) string {
	if l.V2 {
		return filepath.Join(l.Root, rel)
	}
	return filepath.Join(l.Root, controller, rel)
}

// PressureDir returns the directory holding cgroup rel's *.pressure files:
// the group itself on v2, its twin in the unified hierarchy on v1 hybrid.
func (l Layout) PressureDir(rel string) string { return l.Dir(Unified, rel) }
