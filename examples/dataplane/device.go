package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/hal/sim"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// device is the hardware the data plane's functions are partitioned on,
// and what the data plane must do when it stops.
type device struct {
	// driver is passed to updraft.New as it is (not wrapped), so that
	// updraft sees the interfaces it implements, such as hal.Journaled.
	driver hal.Device
	// what says which device this is, for the ready line and the tests:
	// "linux cgroup=<path>" or "sim (<why not linux>)".
	what string
	// cgroup is the data plane's own cgroup with hal/linux, "" with hal/sim.
	cgroup string
	// created are the cgroup directories this process created, deepest
	// first (also in its record, for the generation that stops for good).
	created []string
}

// openDevice returns hal/linux when this process may manage cgroups (root,
// and -device auto or linux) and hal/sim otherwise.
//
// With hal/linux, every function of the data plane is bound to one cgroup,
// the process's own: its functions run in one process, which the kernel
// cannot divide, so the driver sets that cgroup to the sum of their
// allocations and the degrade controller divides it inside. A fresh data
// plane creates the cgroup (below the one it was started in) and moves
// into it; the process a self-update starts inherits it, so the binding
// holds across the change of PID. Both find it in /proc/self/cgroup.
func openDevice(c config, inherited bool, functions []string) (*device, error) {
	why := ""
	switch {
	case c.device == "sim":
		why = "-device sim"
	case os.Geteuid() != 0:
		why = "not root: cgroups cannot be managed"
	}
	if why == "" {
		d, err := openLinux(c, inherited, functions)
		if err == nil {
			return d, nil
		}
		if c.device == "linux" {
			return nil, err
		}
		why = err.Error()
	}
	dev, err := sim.Open(sim.Config{Capacity: hal.Vector{hal.CPU: 4, hal.Memory: 8 << 30}, StatePath: filepath.Join(c.dir, "device.json")})
	if err != nil {
		return nil, err
	}
	return &device{driver: dev, what: "sim (" + strings.ReplaceAll(why, " ", "_") + ")"}, nil
}

func openLinux(c config, inherited bool, functions []string) (*device, error) {
	v2 := false
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		v2 = true
	}
	hierarchies := []string{"cpu", "cpuacct", "memory"}
	if v2 {
		hierarchies = []string{""}
	}
	d := &device{}
	if inherited {
		// The old process made the cgroup and this one was born in it.
		own, err := ownCgroup(v2)
		if err != nil {
			return nil, err
		}
		d.cgroup = own
	} else {
		base, err := ownCgroup(v2)
		if err != nil {
			return nil, err
		}
		d.cgroup = path.Join(base, fmt.Sprintf("updraft-dataplane-%d", os.Getpid()))
		if err := d.create(c.dir, v2, hierarchies); err != nil {
			_ = leaveCgroup(c.dir)
			d.remove()
			return nil, err
		}
	}
	bindings := make([]linux.Binding, len(functions))
	for i, f := range functions {
		bindings[i] = linux.Binding{Function: f, Cgroup: d.cgroup}
	}
	dev, err := linux.New(linux.Config{Bindings: bindings})
	if err != nil {
		if !inherited {
			_ = leaveCgroup(c.dir)
		}
		return nil, err
	}
	d.driver, d.what = dev, "linux cgroup="+d.cgroup
	return d, nil
}

// ownCgroup returns this process's cgroup: on v1 its memory cgroup (the
// deepest a host usually places it in), on v2 its unified cgroup.
func ownCgroup(v2 bool) (string, error) {
	homes, err := ownCgroups()
	if err != nil {
		return "", err
	}
	key := "memory"
	if v2 {
		key = ""
	}
	own, ok := homes[key]
	if !ok {
		return "", fmt.Errorf("/proc/self/cgroup names no %q cgroup", key)
	}
	return own, nil
}

// ownCgroups returns this process's cgroup in each hierarchy, by
// controller ("" for the v2 unified hierarchy).
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// cgroupRecord is what the data plane that created its cgroup leaves in
// its data directory, so that whichever generation stops for good can
// move out and remove what was made.
type cgroupRecord struct {
	Cgroup  string            `json:"cgroup"`
	Homes   map[string]string `json:"homes"`   // hierarchy → the cgroup the first process was started in
	Created []string          `json:"created"` // directories made, deepest first
}

func recordPath(dir string) string { return filepath.Join(dir, "cgroup.json") }

// create makes the data plane's cgroup in each hierarchy (with any parent
// missing there), records what it made, and moves this process into it.
func (d *device) create(dir string, v2 bool, hierarchies []string) error {
	homes, err := ownCgroups()
	if err != nil {
		return err
	}
	rec := cgroupRecord{Cgroup: d.cgroup, Homes: map[string]string{}}
	for _, h := range hierarchies {
		rec.Homes[h] = homes[h]
		var missing []string
		for p := filepath.Join(cgroupRoot, h, d.cgroup); ; p = filepath.Dir(p) {
			if _, err := os.Stat(p); err == nil {
				break
			}
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(missing[i], 0o755); err != nil {
				return fmt.Errorf("create cgroup %s: %w", missing[i], err)
			}
			rec.Created = append([]string{missing[i]}, rec.Created...)
			d.created = rec.Created
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(recordPath(dir), b, 0o644); err != nil {
		return err
	}
	if v2 {
		// The parent must hand its cpu and memory controllers down.
		ctl := filepath.Join(cgroupRoot, filepath.Dir(d.cgroup), "cgroup.subtree_control")
		if err := os.WriteFile(ctl, []byte("+cpu +memory"), 0); err != nil {
			return fmt.Errorf("enable cpu and memory in %s: %w", ctl, err)
		}
	}
	for _, h := range hierarchies {
		procs := filepath.Join(cgroupRoot, h, d.cgroup, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("move into %s: %w", procs, err)
		}
	}
	return nil
}

// remove removes the cgroup directories create made, deepest first; one
// still in use (a process in it) stays.
func (d *device) remove() {
	for _, dir := range d.created {
		_ = os.Remove(dir)
	}
	d.created = nil
}

// leaveCgroup is for the data plane that stops for good (not one that
// handed over: its successor serves from the cgroup): it moves back to the
// cgroups the first generation was started in and removes what that one
// created, as its record in dir says.
func leaveCgroup(dir string) error {
	b, err := os.ReadFile(recordPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil // hal/sim, or nothing made
	}
	if err != nil {
		return err
	}
	var rec cgroupRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("%s: %w", recordPath(dir), err)
	}
	for h, home := range rec.Homes {
		if err := os.WriteFile(filepath.Join(cgroupRoot, h, home, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return err
		}
	}
	for _, p := range rec.Created {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Remove(recordPath(dir))
}
