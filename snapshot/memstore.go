package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
)

// MemStore is an in-memory [Store] for tests and examples. Its zero value is
// not usable; call [NewMemStore]. It is safe for concurrent use.
type MemStore struct {
	mu        sync.Mutex
	committed map[string][]byte // guarded by mu
	pending   map[string]bool   // ids being written; guarded by mu
	records   map[string][]byte // guarded by mu; created on first put
	locks     map[string]string // lock name → holder; guarded by mu
	// FailWrites, when set before Create, makes every Sink.Write fail with
	// it, so tests can play a full or unreachable store.
	FailWrites error
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{committed: map[string][]byte{}, pending: map[string]bool{}}
}

// Create implements [Store].
func (s *MemStore) Create(ctx context.Context, id string) (Sink, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: memstore create %q: %w", id, err)
	}
	if err := ValidID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.committed[id]; ok || s.pending[id] {
		return nil, fmt.Errorf("snapshot: memstore create %q: already exists", id)
	}
	s.pending[id] = true
	return &memSink{store: s, id: id, fail: s.FailWrites}, nil
}

// Open implements [Store]. The reader sees the bytes as committed.
func (s *MemStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: memstore open %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.committed[id]
	if !ok {
		return nil, fmt.Errorf("snapshot: memstore open %q: %w", id, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// List implements [Store].
func (s *MemStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: memstore list: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.committed))
	for id := range s.committed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements [Store].
func (s *MemStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: memstore delete %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.committed[id]; !ok {
		return fmt.Errorf("snapshot: memstore delete %q: %w", id, ErrNotFound)
	}
	delete(s.committed, id)
	return nil
}

// Bytes returns a copy of the committed snapshot id, for tests that tamper
// with stored data; ok is false if there is none.
func (s *MemStore) Bytes(id string) (b []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok = s.committed[id]
	return bytes.Clone(b), ok
}

// Put stores b as committed snapshot id, replacing any, for tests that
// tamper with stored data.
func (s *MemStore) Put(id string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed[id] = bytes.Clone(b)
}

// memSink buffers one snapshot; it is used by one goroutine at a time.
type memSink struct {
	store *MemStore
	id    string
	buf   bytes.Buffer
	fail  error
	done  bool
}

func (w *memSink) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrSealed
	}
	if w.fail != nil {
		return 0, fmt.Errorf("snapshot: memstore write %q: %w", w.id, w.fail)
	}
	return w.buf.Write(p)
}

func (w *memSink) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	delete(w.store.pending, w.id)
	w.store.committed[w.id] = w.buf.Bytes()
	return nil
}

func (w *memSink) Cancel() error {
	if w.done {
		return nil
	}
	w.done = true
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	delete(w.store.pending, w.id)
	return nil
}

// PutRecord stores a copy of data as the record name (see [Store]'s
// package doc on records). Records are never listed as snapshots.
func (s *MemStore) PutRecord(ctx context.Context, name string, data []byte) error {
	const fn = "snapshot: memstore PutRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == nil {
		s.records = map[string][]byte{}
	}
	s.records[name] = bytes.Clone(data)
	return nil
}

// GetRecord returns a copy of the record name, or an error matching
// [ErrNotFound].
func (s *MemStore) GetRecord(ctx context.Context, name string) ([]byte, error) {
	const fn = "snapshot: memstore GetRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.records[name]
	if !ok {
		return nil, fmt.Errorf("%s %q: %w", fn, name, ErrNotFound)
	}
	return bytes.Clone(b), nil
}

// DeleteRecord removes the record name; a missing one is not an error.
func (s *MemStore) DeleteRecord(ctx context.Context, name string) error {
	const fn = "snapshot: memstore DeleteRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, name)
	return nil
}

// Lock takes the lock name for holder without waiting, within this
// MemStore (so within this process). While another holder has it, the
// error matches [ErrLocked] and names that holder. unlock is idempotent.
func (s *MemStore) Lock(ctx context.Context, name, holder string) (unlock func(context.Context) error, err error) {
	const fn = "snapshot: memstore Lock"
	if err := CheckLockArgs(fn, name, holder); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.locks[name]; ok {
		return nil, LockedError(fn, name, h)
	}
	if s.locks == nil {
		s.locks = map[string]string{}
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
