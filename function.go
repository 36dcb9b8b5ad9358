package updraft

import (
	"fmt"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
)

// Criticality is the host's annotation of a function. It is the profile
// package's type, so annotations pass to the profiler unchanged.
type Criticality = profile.Criticality

const (
	// Auto lets updraft classify the function from evidence (see package profile).
	Auto = profile.Auto
	// Critical functions are guaranteed their forecast peak during the update.
	Critical = profile.Critical
	// NonCritical functions share what is left, and may be moved or reduced.
	NonCritical = profile.NonCritical
)

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
	// Degrade is how the function is reduced during the window if the plan
	// leaves it out (it neither fits in what the critical functions leave
	// nor moves to another region); nil means it is then disabled. A
	// function the plan allocates runs normally, within its allocation,
	// and this policy is not applied. New checks the policy.
	Degrade *degrade.Policy
}

// Remote says how a function may run elsewhere.
type Remote struct {
	// State travels with the function and comes back with it. Optional.
	State migrate.State
	// Regions is a data-residency allow-list; empty means any region.
	Regions []string
}

// checkFunctions returns an error naming the first bad annotation: what
// profile.ValidateFunctions refuses (an empty or duplicate name, an unknown
// dependency, a dependency cycle), a Remote spec without a Func or with a
// name or region the migration wire refuses, an invalid Demand, Min or
// Degrade policy.
func checkFunctions(fns []Function) error {
	if len(fns) == 0 {
		return fmt.Errorf("%w: no functions", ErrInvalidFunctions)
	}
	if err := profile.ValidateFunctions(profileFunctions(fns)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidFunctions, err)
	}
	for _, f := range fns {
		if f.Remote != nil && f.Func == nil {
			return fmt.Errorf("%w: function %q has a Remote spec but no Func to run there", ErrInvalidFunctions, f.Name)
		}
		if f.Remote != nil {
			// The name travels on the wire: refuse here what a target would
			// refuse in the middle of an update.
			spec := migrate.Spec{Function: f.Name, Local: f.Func, State: f.Remote.State, Regions: f.Remote.Regions}
			if err := spec.Validate(); err != nil {
				return fmt.Errorf("%w: function %q Remote: %w", ErrInvalidFunctions, f.Name, err)
			}
		}
		if err := f.Demand.Validate(); err != nil {
			return fmt.Errorf("%w: function %q Demand: %w", ErrInvalidFunctions, f.Name, err)
		}
		if err := f.Min.Validate(); err != nil {
			return fmt.Errorf("%w: function %q Min: %w", ErrInvalidFunctions, f.Name, err)
		}
		if f.Degrade != nil {
			if err := f.Degrade.Validate(); err != nil {
				return fmt.Errorf("%w: function %q Degrade: %w", ErrInvalidFunctions, f.Name, err)
			}
		}
	}
	return nil
}

// profileFunctions translates the host's annotations into the profile
// package's input.
func profileFunctions(fns []Function) []profile.Function {
	out := make([]profile.Function, len(fns))
	for i, f := range fns {
		out[i] = profile.Function{Name: f.Name, Criticality: f.Criticality, DependsOn: f.DependsOn, EntryPoint: f.EntryPoint}
	}
	return out
}
