package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/updraft-dev/updraft/internal/cgroupfs"
)

// Cgroup v1 controllers the driver writes to. cpuacct is read for usage.
const (
	ctrlCPU     = cgroupfs.CPU
	ctrlCPUAcct = cgroupfs.CPUAcct
	ctrlMemory  = cgroupfs.Memory
	ctrlCPUSet  = cgroupfs.CPUSet
)

// layout is where the cgroup hierarchies of one machine live.
type layout struct {
	root string
	v2   bool // one unified hierarchy at root; else v1, one per controller
}

// detectLayout detects the layout with internal/cgroupfs.Detect (v2 when
// root has cgroup.controllers; on the v1 "hybrid" layout the unified
// hierarchy at root/unified carries no controllers and is used only for
// PSI) and, on v1, requires the cpu and memory hierarchies the driver
// writes to.
func detectLayout(root string) (layout, error) {
	l, err := cgroupfs.Detect(root)
	if err != nil {
		return layout{}, fmt.Errorf("linux: %w", err)
	}
	for _, c := range []string{ctrlCPU, ctrlMemory} {
		if !l.Has(c) {
			return layout{}, fmt.Errorf("linux: %s holds cgroup v1 hierarchies but not %s: %w", root, c, cgroupfs.ErrNoCgroups)
		}
	}
	return layout{root: root, v2: l.V2}, nil
}

// fs returns l as internal/cgroupfs reads it.
func (l layout) fs() cgroupfs.Layout { return cgroupfs.Layout{Root: l.root, V2: l.v2} }

// dir returns the directory of cgroup rel in controller's hierarchy; on v2
// the controller is ignored.
func (l layout) dir(controller, rel string) string { return l.fs().Dir(controller, rel) }

// hierarchyRoot returns the root of controller's hierarchy.
func (l layout) hierarchyRoot(controller string) string { return l.dir(controller, "") }

// controllers returns the hierarchies a binding touches: on v1 cpu and
// memory, cpuset when it pins CPUs and blkio when I/O is enforced; on v2
// the single "" hierarchy.
func (l layout) controllers(cpuset, io bool) []string {
	if l.v2 {
		return []string{""}
	}
	out := []string{ctrlCPU, ctrlMemory}
	if cpuset {
		out = append(out, ctrlCPUSet)
	}
	if io {
		out = append(out, ctrlBlkio)
	}
	return out
}

// hasFile reports whether dir/file exists.
func hasFile(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// isNotExist reports whether err means a file, cgroup or process is gone.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
