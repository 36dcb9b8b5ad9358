package profile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Criticality is the host's annotation of a function: whether it must keep
// serving during an update, must not, or should be judged from evidence.
// The zero value is [Auto].
type Criticality int

// Criticality values.
const (
	Auto        Criticality = iota // classify from evidence
	Critical                       // must keep serving during the update
	NonCritical                    // may be moved, throttled or stopped
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
	default:
		return fmt.Sprintf("criticality(%d)", int(c))
	}
}

// Function is what the host says about one of its functions.
type Function struct {
	Name        string
	Criticality Criticality
	DependsOn   []string // everything a critical function depends on is critical too
	EntryPoint  bool     // a request entry point whose rate Auto functions are compared with
}

// Sentinel errors returned (wrapped, naming the function) by
// [Analyzer.Forecast] when the functions it is given are inconsistent.
// Check with errors.Is.
var (
	ErrBadFunction        = errors.New("profile: bad function")
	ErrUnknownDependency  = errors.New("profile: unknown dependency")
	ErrDependencyCycle    = errors.New("profile: dependency cycle")
	ErrDuplicateFunction  = errors.New("profile: duplicate function")
	ErrUnknownCriticality = errors.New("profile: unknown criticality")
)

// validateFunctions checks names, criticalities and the dependency graph,
// and returns the functions indexed by name.
// ValidateFunctions returns an error naming the first bad function: an
// empty or duplicate name, an unknown criticality, a dependency on a
// function not in the list, or a dependency cycle. Forecast runs the same
// checks; hosts (and the updraft Orchestrator) call it to refuse bad
// annotations before anything changes.
func ValidateFunctions(functions []Function) error {
	_, err := validateFunctions(functions)
	return err
}

func validateFunctions(functions []Function) (map[string]*Function, error) {
	byName := make(map[string]*Function, len(functions))
	for i := range functions {
		f := &functions[i]
		switch {
		case f.Name == "":
			return nil, fmt.Errorf("%w: function #%d has an empty name", ErrBadFunction, i)
		case strings.TrimSpace(f.Name) != f.Name:
			return nil, fmt.Errorf("%w: function %q has leading or trailing spaces", ErrBadFunction, f.Name)
		case f.Criticality < Auto || f.Criticality > NonCritical:
			return nil, fmt.Errorf("%w: function %q has criticality %d", ErrUnknownCriticality, f.Name, int(f.Criticality))
		}
		if _, dup := byName[f.Name]; dup {
			return nil, fmt.Errorf("%w: function %q is listed twice", ErrDuplicateFunction, f.Name)
		}
		byName[f.Name] = f
	}
	for i := range functions {
		f := &functions[i]
		for _, d := range f.DependsOn {
			if _, ok := byName[d]; !ok {
				return nil, fmt.Errorf("%w: function %q depends on %q, which is not among the functions given", ErrUnknownDependency, f.Name, d)
			}
		}
	}
	if cycle := findCycle(functions, byName); cycle != nil {
		return nil, fmt.Errorf("%w: function %q: %s", ErrDependencyCycle, cycle[0], strings.Join(cycle, " -> "))
	}
	return byName, nil
}

// findCycle returns one dependency cycle as a path that starts and ends
// with the same function, or nil. Functions are visited in the order given
// so the reported cycle is deterministic.
func findCycle(functions []Function, byName map[string]*Function) []string {
	const (
		unvisited = iota
		onStack
		done
	)
	state := make(map[string]int, len(functions))
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = onStack
		stack = append(stack, name)
		for _, d := range byName[name].DependsOn {
			switch state[d] {
			case onStack:
				start := slices.Index(stack, d)
				return append(slices.Clone(stack[start:]), d)
			case unvisited:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, f := range functions {
		if state[f.Name] == unvisited {
			if c := visit(f.Name); c != nil {
				return c
			}
		}
	}
	return nil
}
