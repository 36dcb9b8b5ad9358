package updraft

import (
	"errors"
	"fmt"
	"slices"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/snapshot"
)

// Criticality is the host's annotation of a function.
type Criticality int

const (
	// Auto lets updraft classify the function from evidence (see package profile).
	Auto Criticality = iota
	// Critical functions are guaranteed their forecast peak during the update.
	Critical
	// NonCritical functions share what is left, and may be moved or reduced.
	NonCritical
)

// String returns "auto", "critical" or "non-critical".
func (c Criticality) String() string {
	switch c {
	case Auto:
		return "auto"
	case Critical:
		return "critical"
	case NonCritical:
		return "non-critical"
	}
	return fmt.Sprintf("Criticality(%d)", int(c))
}

// Function is the host's description of one of its functions.
type Function struct {
	// Name identifies the function everywhere: in profiles, plans, device
	// bindings, reports. Required and unique.
	Name string
	// Criticality is the host's annotation; the zero value is Auto.
	Criticality Criticality
	// DependsOn names the functions this one calls. Everything a critical
	// function depends on is critical too.
	DependsOn []string
	// EntryPoint marks a request entry point: Auto functions whose activity
	// follows the entry points' request rate are judged critical.
	EntryPoint bool
	// Demand is a static estimate used when the profiler has no samples of
	// the function (a new function, or one that is never measured). A
	// critical function needs samples or a Demand: updraft will not
	// guarantee what it cannot size.
	Demand hal.Vector
	// Min is the least a non-critical function can do useful work with; nil
	// means its forecast median.
	Min hal.Vector
	// State is the function's critical state, snapshotted before the update
	// and restored on rollback. Optional.
	State snapshot.Source
	// RestoreAfterUpdate restores State from the snapshot after a successful
	// update too, for updates that wipe the state (a firmware reload that
	// clears an offload card's tables).
	RestoreAfterUpdate bool
	// Func is the function's implementation, called by
	// [Orchestrator.Invoke]. Required when Remote is set.
	Func migrate.Func
	// Remote, when set, allows the function to run in another region while
	// it does not fit locally.
	Remote *Remote
	// Degrade is how the function is reduced when it neither fits nor
	// moves; nil means it is disabled for the window.
	Degrade *degrade.Policy
}

// Remote says how a function may run elsewhere.
type Remote struct {
	// State travels with the function and comes back with it. Optional.
	State migrate.State
	// Regions is a data-residency allow-list; empty means any region.
	Regions []string
}

// ErrInvalidFunctions is wrapped by every error [New] returns for bad
// annotations; check with errors.Is.
var ErrInvalidFunctions = errors.New("updraft: invalid functions")

// checkFunctions returns an error naming the first bad annotation: an empty
// or duplicate name, an unknown dependency, a dependency cycle, a remote
// spec without a Func, or an invalid Demand or Min.
func checkFunctions(fns []Function) error {
	if len(fns) == 0 {
		return fmt.Errorf("%w: no functions", ErrInvalidFunctions)
	}
	byName := make(map[string]*Function, len(fns))
	for i := range fns {
		f := &fns[i]
		switch {
		case f.Name == "":
			return fmt.Errorf("%w: function %d has no name", ErrInvalidFunctions, i)
		case byName[f.Name] != nil:
			return fmt.Errorf("%w: function %q is declared twice", ErrInvalidFunctions, f.Name)
		case f.Criticality < Auto || f.Criticality > NonCritical:
			return fmt.Errorf("%w: function %q: unknown criticality %d", ErrInvalidFunctions, f.Name, f.Criticality)
		case f.Remote != nil && f.Func == nil:
			return fmt.Errorf("%w: function %q has a Remote spec but no Func to run there", ErrInvalidFunctions, f.Name)
		}
		if err := f.Demand.Validate(); err != nil {
			return fmt.Errorf("%w: function %q Demand: %w", ErrInvalidFunctions, f.Name, err)
		}
		if err := f.Min.Validate(); err != nil {
			return fmt.Errorf("%w: function %q Min: %w", ErrInvalidFunctions, f.Name, err)
		}
		byName[f.Name] = f
	}
	for _, f := range fns {
		for _, d := range f.DependsOn {
			if byName[d] == nil {
				return fmt.Errorf("%w: function %q depends on unknown function %q", ErrInvalidFunctions, f.Name, d)
			}
		}
	}
	if cycle := findCycle(fns, byName); cycle != nil {
		return fmt.Errorf("%w: dependency cycle %v", ErrInvalidFunctions, cycle)
	}
	return nil
}

// findCycle returns one dependency cycle as a path that starts and ends
// with the same function, or nil.
func findCycle(fns []Function, byName map[string]*Function) []string {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make(map[string]int, len(fns))
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch state[name] {
		case onPath:
			start := slices.Index(path, name)
			return append(slices.Clone(path[start:]), name)
		case done:
			return nil
		}
		state[name] = onPath
		path = append(path, name)
		for _, d := range byName[name].DependsOn {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for _, f := range fns {
		if c := visit(f.Name); c != nil {
			return c
		}
	}
	return nil
}
