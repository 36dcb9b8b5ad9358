package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
)

// Defaults for the zero fields of [Config].
const (
	DefaultRoot   = "/sys/fs/cgroup" // where cgroup hierarchies are mounted
	DefaultParent = "updraft"        // where created cgroups go, in each hierarchy
	DefaultProc   = "/proc"          // procfs mount point
	DefaultSys    = "/sys"           // sysfs mount point
)

// Config binds functions to cgroups; it is also the driver's JSON config
// (hal.Open("linux", jsonConfig)). The zero value of each field means the
// documented default; Bindings must name at least one function.
type Config struct {
	// Root is the cgroup mount point; "" means [DefaultRoot]. A Root with
	// cgroup.controllers at its top is a cgroup v2 unified hierarchy;
	// otherwise it holds one v1 hierarchy per controller (cpu, memory, ...).
	Root string `json:"root"`
	// Parent is where cgroups created for PIDs bindings go, relative to
	// each hierarchy; "" means [DefaultParent]. Function f's cgroup is
	// Parent/f.
	Parent   string    `json:"parent"`
	Bindings []Binding `json:"bindings"`
	// IO, when set, makes the driver enforce hal.IO on the block devices
	// it names; without it an allocation naming hal.IO is refused.
	IO *IOConfig `json:"io,omitempty"`

	// Proc is the procfs mount point; "" means [DefaultProc]. Tests point
	// it (and Sys) at fixtures.
	Proc string `json:"proc,omitempty"`
	// Sys is the sysfs mount point; "" means [DefaultSys].
	Sys string `json:"sys,omitempty"`
	// Logger receives a record for each cgroup change and undo; nil
	// discards them. It is not part of the JSON config.
	Logger *slog.Logger `json:"-"`
}

// Binding ties one function to the cgroup it runs in, or to the processes
// and threads that run it. Exactly one of Cgroup and PIDs is set.
type Binding struct {
	// Function is the function's name as allocations name it.
	Function string `json:"function"`
	// Cgroup is an existing cgroup path, relative to the hierarchy root
	// (for example "dataplane/forward"), the function already runs in. On
	// cgroup v1 it must exist in the cpu and memory hierarchies, and in
	// cpuset when CPUs is set.
	//
	// Functions that run in one process share its cgroup: bind each of
	// them to the same Cgroup (with the same CPUs). The kernel cannot tell
	// them apart, so the driver sets that cgroup to the sum of their
	// allocations (the sum of the guarantees; the sum of the limits, or
	// no limit when one of them has none), and [Device.Usage] of each
	// reports the whole cgroup's use. How they share the cgroup inside the
	// process is for in-process admission (package degrade) to decide. A
	// binary that replaces itself (updraft.SelfUpdate) binds this way: the
	// process it starts inherits its cgroup, so the binding holds across
	// the change of PID, where a PIDs binding would not.
	Cgroup string `json:"cgroup,omitempty"`
	// PIDs are processes (or, on cgroup v1, threads) the driver moves into
	// Parent/Function, a cgroup it creates at Apply and removes at undo.
	PIDs []int `json:"pids,omitempty"`
	// CPUs optionally pins the function to a cpuset, for example "0-1" or
	// "0,2-3". It must name online CPUs.
	CPUs string `json:"cpus,omitempty"`
}

// ParseConfig decodes the driver's JSON configuration, rejecting unknown
// fields, and fills in defaults. It does not look at the machine; [New]
// does.
func ParseConfig(data string) (Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("linux: config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("linux: config: trailing data after the JSON object")
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c.withDefaults(), nil
}

func (c Config) withDefaults() Config {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.Parent == "" {
		c.Parent = DefaultParent
	}
	if c.Proc == "" {
		c.Proc = DefaultProc
	}
	if c.Sys == "" {
		c.Sys = DefaultSys
	}
	return c
}

// check validates what can be validated without the machine: names,
// paths and IDs, each error naming the field at fault.
func (c Config) check() error {
	for _, f := range []struct{ name, value string }{{"root", c.Root}, {"proc", c.Proc}, {"sys", c.Sys}} {
		if f.value != "" && !path.IsAbs(f.value) {
			return fmt.Errorf("linux: config field %q: %q is not an absolute path", f.name, f.value)
		}
	}
	if c.Parent != "" {
		if err := checkRelative(c.Parent); err != nil {
			return fmt.Errorf("linux: config field \"parent\": %w", err)
		}
	}
	if c.IO != nil {
		if err := c.IO.check(); err != nil {
			return fmt.Errorf("linux: config field \"io\": %w", err)
		}
	}
	if len(c.Bindings) == 0 {
		return errors.New("linux: config field \"bindings\" is empty: bind at least one function")
	}
	functions, cgroups, pids := map[string]int{}, map[string]int{}, map[int]int{}
	for i, b := range c.Bindings {
		if err := b.check(); err != nil {
			return fmt.Errorf("linux: config bindings[%d]: %w", i, err)
		}
		if j, dup := functions[b.Function]; dup {
			return fmt.Errorf("linux: config bindings[%d]: function %q is already bound by bindings[%d]", i, b.Function, j)
		}
		functions[b.Function] = i
		if b.Cgroup != "" {
			cg := strings.TrimPrefix(b.Cgroup, "/")
			if j, dup := cgroups[cg]; dup && c.Bindings[j].CPUs != b.CPUs {
				return fmt.Errorf("linux: config bindings[%d]: function %q: cgroup %q is shared with bindings[%d] (function %q), whose cpus are %q, not %q: functions sharing a cgroup must agree on cpus",
					i, b.Function, b.Cgroup, j, c.Bindings[j].Function, c.Bindings[j].CPUs, b.CPUs)
			} else if !dup {
				cgroups[cg] = i
			}
		}
		for _, pid := range b.PIDs {
			if j, dup := pids[pid]; dup {
				return fmt.Errorf("linux: config bindings[%d]: function %q: pid %d is already bound by bindings[%d]", i, b.Function, pid, j)
			}
			pids[pid] = i
		}
	}
	return nil
}

func (b Binding) check() error {
	if b.Function == "" {
		return errors.New("field \"function\" is empty")
	}
	if strings.ContainsAny(b.Function, "/\x00") || b.Function == "." || b.Function == ".." {
		return fmt.Errorf("function %q: name cannot be a cgroup directory name (no '/', NUL, '.' or '..')", b.Function)
	}
	switch {
	case b.Cgroup == "" && len(b.PIDs) == 0:
		return fmt.Errorf("function %q: set either \"cgroup\" or \"pids\"", b.Function)
	case b.Cgroup != "" && len(b.PIDs) > 0:
		return fmt.Errorf("function %q: set only one of \"cgroup\" and \"pids\"", b.Function)
	}
	if b.Cgroup != "" {
		if err := checkRelative(b.Cgroup); err != nil {
			return fmt.Errorf("function %q field \"cgroup\": %w", b.Function, err)
		}
	}
	seen := map[int]bool{}
	for _, pid := range b.PIDs {
		if pid <= 0 {
			return fmt.Errorf("function %q field \"pids\": %d is not a process ID", b.Function, pid)
		}
		if seen[pid] {
			return fmt.Errorf("function %q field \"pids\": %d is listed twice", b.Function, pid)
		}
		seen[pid] = true
	}
	if b.CPUs != "" {
		if _, err := ParseCPUList(b.CPUs); err != nil {
			return fmt.Errorf("function %q field \"cpus\": %w", b.Function, err)
		}
	}
	return nil
}

// checkRelative accepts a clean cgroup path relative to a hierarchy root.
func checkRelative(p string) error {
	q := strings.TrimPrefix(p, "/")
	switch {
	case q == "":
		return fmt.Errorf("%q names the hierarchy root; name a cgroup below it", p)
	case strings.ContainsRune(q, 0):
		return fmt.Errorf("%q contains NUL", p)
	case path.Clean(q) != q:
		return fmt.Errorf("%q is not a clean path (clean form %q)", p, path.Clean(q))
	case q == ".." || strings.HasPrefix(q, "../"):
		return fmt.Errorf("%q leaves the hierarchy root", p)
	}
	return nil
}
