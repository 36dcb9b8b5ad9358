package updraft

import (
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/hal"
)

// Errors that callers branch on; check with errors.Is. Each error updraft
// returns wraps at most one of them and says, in words, what is at fault.
var (
	// ErrInvalidFunctions: an annotation is wrong (empty or duplicate name,
	// unknown dependency, cycle, a Remote without Func, a bad Demand, Min or
	// Degrade policy, a name the migration wire refuses).
	ErrInvalidFunctions = errors.New("updraft: invalid functions")
	// ErrMissingOption: something required is not configured.
	ErrMissingOption = errors.New("updraft: missing option")
	// ErrInvalidOption: an option's value is out of range or unknown.
	ErrInvalidOption = errors.New("updraft: invalid option")
	// ErrConflictingOptions: two settings contradict each other.
	ErrConflictingOptions = errors.New("updraft: conflicting options")
	// ErrInvalidUpdate: the Update cannot be run (nil, or no Apply).
	ErrInvalidUpdate = errors.New("updraft: invalid update")
	// ErrUpdateInProgress: another update runs, in this process or in
	// another one sharing the journal (the error names the holder).
	ErrUpdateInProgress = errors.New("updraft: an update is already in progress")
	// ErrUnfinishedUpdate: the journal holds an update that a crashed or
	// panicked process did not finish; call [Orchestrator.Resume] first.
	ErrUnfinishedUpdate = errors.New("updraft: an unfinished update is in the journal")
	// ErrBadJournal: the journal cannot be resumed as it is (written by a
	// newer version, damaged, or pointing at a snapshot that is gone);
	// nothing was changed, and the error says what the operator can do.
	ErrBadJournal = errors.New("updraft: the journal cannot be resumed")
	// ErrRollbackOwed: Resume must roll back an update whose Apply started,
	// but was given no Update to call Rollback on.
	ErrRollbackOwed = errors.New("updraft: the host's rollback is owed")
)

// PanicError is the error an update ends with when host code or a driver
// panicked: Update.Apply or Rollback, a device's Capacity, Apply or Undo,
// Options.OnEvent, a state source, a check. updraft recovers the panic,
// runs the compensations a failure at that point runs, and returns the
// panic as this error instead of letting it go on: the process being
// updated is the one serving the critical functions, and a panic that
// went on would stop them (or, under net/http's recovery, leave them
// serving on a half-changed machine). Check with errors.As.
type PanicError struct {
	// Where says whose code panicked, e.g. "Update.Apply" or "device Apply".
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("updraft: %s panicked: %v", e.Where, e.Value)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// guard calls f and turns a panic from it into a *PanicError.
func guard(where string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Where: where, Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// checkDevice refuses a nil device, including a typed nil in an interface
// (which would panic inside the first call).
func checkDevice(d hal.Device) error {
	if d == nil {
		return fmt.Errorf("%w: no device: pass a hal.Device (hal/sim for tests, hal/linux for cgroups)", ErrMissingOption)
	}
	if v := reflect.ValueOf(d); isNilable(v.Kind()) && v.IsNil() {
		return fmt.Errorf("%w: device is a nil %T", ErrInvalidOption, d)
	}
	return nil
}

func isNilable(k reflect.Kind) bool {
	switch k {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return true
	}
	return false
}

// multiError starts a collection of errors (nil ones are skipped) that
// prints on one line, "first; second".
func multiError(errs ...error) *multierror.Error {
	m := &multierror.Error{ErrorFormat: func(es []error) string {
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.Error()
		}
		return strings.Join(parts, "; ")
	}}
	return multierror.Append(m, errs...)
}

// flatten returns nil for no errors, the error itself for one, and the
// collection for several.
func flatten(m *multierror.Error) error {
	switch len(m.Errors) {
	case 0:
		return nil
	case 1:
		return m.Errors[0]
	}
	return m
}
