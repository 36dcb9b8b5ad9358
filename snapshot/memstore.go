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
	records   map[string][]byte // guarded by mu
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
