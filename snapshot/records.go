package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/updraft-dev/updraft/internal/durable"
)

// ErrLocked is returned by a Lock while another holder has the lock; the
// error's message names that holder.
var ErrLocked = errors.New("snapshot: locked")

// Records are small named byte strings a store keeps beside its
// snapshots, written atomically and durably: updraft keeps its update
// journal in them. They are never listed, opened or deleted as snapshots.
// [FileStore], [MemStore] and snapshot/etcdstore implement
//
//	PutRecord(ctx, name string, data []byte) error // atomic and durable
//	GetRecord(ctx, name string) ([]byte, error)    // missing: ErrNotFound
//	DeleteRecord(ctx, name string) error           // missing is not an error
//
// and a lock for one writer at a time across processes (and, with etcd,
// machines) that share the store:
//
//	Lock(ctx, name, holder string) (unlock func(context.Context) error, err error)
//
// Lock does not wait: while another holder has the lock it returns an
// error matching [ErrLocked] that names the holder. A lock dies with the
// process that holds it (FileStore: the kernel drops a dead process's
// flock; etcdstore: the holder's session lease expires).

// ValidRecordName reports whether name can name a record or a lock in
// every store; the rule is [ValidID]'s.
func ValidRecordName(name string) error {
	if err := ValidID(name); err != nil {
		return fmt.Errorf("snapshot: record name: %w", err)
	}
	return nil
}

// PutRecord stores data under name, replacing any record of that name.
func (s *MemStore) PutRecord(ctx context.Context, name string, data []byte) error {
	if err := recordArgs(ctx, "memstore put record", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == nil {
		s.records = map[string][]byte{}
	}
	s.records[name] = bytes.Clone(data)
	return nil
}

// GetRecord returns the record name, or an error matching [ErrNotFound].
func (s *MemStore) GetRecord(ctx context.Context, name string) ([]byte, error) {
	if err := recordArgs(ctx, "memstore get record", name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.records[name]
	if !ok {
		return nil, fmt.Errorf("snapshot: memstore record %q: %w", name, ErrNotFound)
	}
	return bytes.Clone(b), nil
}

// DeleteRecord removes the record name; a missing record is not an error.
func (s *MemStore) DeleteRecord(ctx context.Context, name string) error {
	if err := recordArgs(ctx, "memstore delete record", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, name)
	return nil
}

// Lock takes the lock name for holder within this MemStore.
func (s *MemStore) Lock(ctx context.Context, name, holder string) (func(context.Context) error, error) {
	if err := recordArgs(ctx, "memstore lock", name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = map[string]string{}
	}
	if h, ok := s.locks[name]; ok {
		return nil, fmt.Errorf("%w: %q is held by %s", ErrLocked, name, describeHolder(h))
	}
	s.locks[name] = holder
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.locks, name)
		})
		return nil
	}, nil
}

func recordArgs(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: %s %q: %w", op, name, err)
	}
	if err := ValidRecordName(name); err != nil {
		return fmt.Errorf("snapshot: %s: %w", op, err)
	}
	return nil
}

func describeHolder(h string) string {
	if h = strings.TrimSpace(h); h == "" {
		return "an unnamed holder"
	}
	return fmt.Sprintf("%q", h)
}

// Records of a FileStore live in its "records" subdirectory, one file
// each, written to a temporary file, fsynced, renamed and the directory
// fsynced; locks are files in its "locks" subdirectory held with flock.

func (s *FileStore) recordDir() (string, error) {
	dir := filepath.Join(s.dir, "records")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("snapshot: filestore records: %w", err)
	}
	return dir, nil
}

// PutRecord stores data under name atomically and durably.
func (s *FileStore) PutRecord(ctx context.Context, name string, data []byte) error {
	if err := recordArgs(ctx, "filestore put record", name); err != nil {
		return err
	}
	dir, err := s.recordDir()
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(dir, name), data); err != nil {
		return fmt.Errorf("snapshot: filestore put record %q: %w", name, err)
	}
	return nil
}

// GetRecord returns the record name, or an error matching [ErrNotFound].
func (s *FileStore) GetRecord(ctx context.Context, name string) ([]byte, error) {
	if err := recordArgs(ctx, "filestore get record", name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "records", name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: filestore record %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: filestore get record %q: %w", name, err)
	}
	return b, nil
}

// DeleteRecord removes the record name durably; a missing record is not an
// error.
func (s *FileStore) DeleteRecord(ctx context.Context, name string) error {
	if err := recordArgs(ctx, "filestore delete record", name); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "records")
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: filestore delete record %q: %w", name, err)
	}
	return syncDir(dir)
}

// Lock takes the lock name for holder across every process sharing the
// store's directory (two FileStores in one process exclude each other
// too). The lock file holds the holder's name for the error others get;
// the kernel releases the lock when the holder's process dies.
func (s *FileStore) Lock(ctx context.Context, name, holder string) (func(context.Context) error, error) {
	if err := recordArgs(ctx, "filestore lock", name); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: filestore lock %q: %w", name, err)
	}
	return lockFile(filepath.Join(dir, name), name, holder)
}
