// Package durable writes files so that they survive a crash: the one way
// the packages of updraft make a small file (a journal record, a device's
// state, a lease's route) durable.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with b atomically and durably: b goes to a
// temporary file in the same directory, which is fsynced, renamed over
// path, and the directory fsynced. After a crash path holds either its
// old content or b, whole.
func WriteFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that files created, renamed or removed
// in it stay so after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
