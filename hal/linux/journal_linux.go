package linux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-multierror"
	"github.com/opencontainers/cgroups"
)

// journal records, in order, every change one Apply makes, before it
// makes it, so that undo can reverse them newest first. It is owned by
// one Apply and, after Apply returns, by the Undo closure, which the
// device's mutex serialises. With onRecord set (ApplyJournaled), every
// step recorded is first handed, with all the steps before it, to the
// caller's durable journal: the undo outlives the process.
type journal struct {
	log      *slog.Logger
	steps    []step
	onRecord func([]byte) error
}

// step is one recorded change and how to reverse it. Reversing is
// idempotent: it may run again after a failed undo, and it is harmless for
// a change that was recorded but never made.
type step interface {
	reverse(ctx context.Context) error
}

// record adds s; the change it describes may be made only if record
// returns nil.
func (j *journal) record(s step) error {
	j.steps = append(j.steps, s)
	if j.onRecord == nil {
		return nil
	}
	b, err := encodeSteps(j.steps)
	if err == nil {
		err = j.onRecord(b)
	}
	if err != nil {
		j.steps = j.steps[:len(j.steps)-1]
		return fmt.Errorf("linux: journal: %w", err)
	}
	return nil
}

// undo reverses every step, newest first. File restores that fail are
// retried once after all other steps, because a cgroup may refuse a value
// until a related one is restored (memory above memory+swap, a CFS quota
// the parent's does not allow yet). Errors are collected, never dropped.
func (j *journal) undo(ctx context.Context) error {
	var (
		errs  *multierror.Error
		retry []*savedFile
	)
	for i := len(j.steps) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return multierror.Append(errs, fmt.Errorf("linux: undo: %w", err)).ErrorOrNil()
		}
		s := j.steps[i]
		err := s.reverse(ctx)
		if f, ok := s.(*savedFile); ok && err != nil {
			retry = append(retry, f)
			continue
		}
		errs = multierror.Append(errs, err)
	}
	for _, f := range retry {
		errs = multierror.Append(errs, f.reverse(ctx))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("linux: undo: %w", err)
	}
	j.log.Debug("linux: undo complete", "steps", len(j.steps))
	return nil
}

// savedFile is a cgroup file's content before Apply wrote it.
type savedFile struct {
	dir, file, content string
}

// saveFile reads dir/file and records it for restoring. A file that does
// not exist is skipped: Apply then either does not write it or fails.
func (j *journal) saveFile(dir, file string) error {
	s, err := cgroups.ReadFile(dir, file)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return j.record(&savedFile{dir: dir, file: file, content: strings.TrimSuffix(s, "\n")})
}

func (f *savedFile) reverse(context.Context) error {
	if err := cgroups.WriteFile(f.dir, f.file, f.content); err != nil {
		return fmt.Errorf("restore %s/%s to %q: %w", f.dir, f.file, f.content, err)
	}
	return nil
}

// createdDir is a cgroup directory Apply created. Removing a directory
// that other cgroups were created in meanwhile is left for later: it is
// not an error, since those cgroups are someone else's.
type createdDir struct {
	path   string
	shared bool // a Parent that other functions' cgroups may share
}

func (c *createdDir) reverse(context.Context) error {
	if c.shared {
		err := syscall.Rmdir(c.path)
		if err == nil || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EBUSY) {
			return nil
		}
		return &os.PathError{Op: "remove cgroup", Path: c.path, Err: err}
	}
	if err := cgroups.RemovePath(c.path); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", c.path, err)
	}
	return nil
}

// movedTask is a process or thread Apply moved out of the cgroup dir.
type movedTask struct {
	t    task
	home string // directory of the cgroup it came from
}

func (m *movedTask) reverse(context.Context) error {
	return moveTask(m.t, m.home)
}

// moveTask writes t into the cgroup at dir; a task that has exited is not
// an error.
func moveTask(t task, dir string) error {
	err := cgroups.WriteFile(dir, t.procsFile(), strconv.Itoa(t.pid))
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return fmt.Errorf("move pid %d to %s: %w", t.pid, dir, err)
}

// drain moves whatever processes are left in a created cgroup (children
// the bound processes forked) to home before the cgroup is removed.
type drain struct {
	dir, home string
}

func (dr *drain) reverse(context.Context) error {
	pids, err := cgroups.GetPids(dr.dir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list processes left in %s: %w", dr.dir, err)
	}
	var errs *multierror.Error
	for _, pid := range pids {
		errs = multierror.Append(errs, moveTask(task{pid: pid, tgid: pid}, dr.home))
	}
	return errs.ErrorOrNil()
}

// enabledControllers are controllers Apply enabled in a cgroup v2
// directory's cgroup.subtree_control.
type enabledControllers struct {
	dir   string
	names []string
}

func (e *enabledControllers) reverse(context.Context) error {
	var b strings.Builder
	for i, n := range e.names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("-" + n)
	}
	err := cgroups.WriteFile(e.dir, "cgroup.subtree_control", b.String())
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("disable controllers %v in %s: %w", e.names, e.dir, err)
	}
	return nil
}
