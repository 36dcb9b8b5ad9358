//go:build unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// locksDir is the subdirectory of a [FileStore]'s directory that holds one
// lock file per lock name.
const locksDir = "locks"

// Lock takes the lock name for holder without waiting, across every
// process that opens a FileStore on the same directory (on the same
// machine, or a file system whose flock works across machines). It is an
// exclusive flock(2) on the file locks/<name> in the store's directory, in
// which holder is written while the lock is held. The lock is released by
// unlock, or by the kernel when the process dies (the file's descriptor is
// closed), whatever the way.
//
// While another holder has the lock, Lock returns an error matching
// [ErrLocked] that names that holder (as it wrote it). Two Locks of the
// same name in one process also exclude each other. unlock is idempotent.
func (s *FileStore) Lock(ctx context.Context, name, holder string) (unlock func(context.Context) error, err error) {
	const fn = "snapshot: filestore Lock"
	if err := CheckLockArgs(fn, name, holder); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	dir := filepath.Join(s.dir, locksDir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, LockedError(fn, name, readHolder(f))
		}
		return nil, fmt.Errorf("%s %q: flock %s: %w", fn, name, path, err)
	}
	// The holder goes in after the lock is ours; a Lock that fails in
	// between reads an empty file and says the holder is unrecorded.
	if err := writeHolder(f, holder); err != nil {
		f.Close() // releases the lock
		return nil, fmt.Errorf("%s %q: record holder in %s: %w", fn, name, path, err)
	}
	var once sync.Once
	return func(context.Context) error {
		var err error
		once.Do(func() {
			terr := f.Truncate(0) // the next reader sees no stale holder
			uerr := flock(f, unix.LOCK_UN)
			cerr := f.Close()
			if e := errors.Join(terr, uerr, cerr); e != nil {
				err = fmt.Errorf("snapshot: filestore unlock %q: %w", name, e)
			}
		})
		return err
	}, nil
}

// flock retries flock(2) when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func writeHolder(f *os.File, holder string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(holder), 0)
	return err
}

func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxHolderBytes))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
