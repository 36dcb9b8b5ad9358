package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Cgroup v1 controllers the driver writes to. cpuacct is read for usage.
const (
	ctrlCPU     = "cpu"
	ctrlCPUAcct = "cpuacct"
	ctrlMemory  = "memory"
	ctrlCPUSet  = "cpuset"
)

// layout is where the cgroup hierarchies of one machine live.
type layout struct {
	root string
	v2   bool // one unified hierarchy at root; else v1, one per controller
}

// detectLayout decides between a cgroup v2 unified hierarchy (root has
// cgroup.controllers) and v1 hierarchies (root/cpu and root/memory exist).
// On the v1 "hybrid" layout the unified hierarchy at root/unified carries
// no controllers and is ignored.
func detectLayout(root string) (layout, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return layout{root: root, v2: true}, nil
	}
	for _, c := range []string{ctrlCPU, ctrlMemory} {
		if _, err := os.Stat(filepath.Join(root, c)); err != nil {
			return layout{}, fmt.Errorf("linux: %s is neither a cgroup v2 hierarchy (no cgroup.controllers) nor holds cgroup v1 hierarchies (%s: %w)", root, c, err)
		}
	}
	return layout{root: root}, nil
}

// dir returns the directory of cgroup rel in controller's hierarchy; on v2
// the controller is ignored.
func (l layout) dir(controller, rel string) string {
	if l.v2 {
		return filepath.Join(l.root, rel)
	}
	return filepath.Join(l.root, controller, rel)
}

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
