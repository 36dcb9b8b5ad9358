package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"
)

// MapState is an in-memory [State]: counters by key, exported as a JSON
// object. Tests, examples and the region server use it; a host with real
// state implements State over its own data.
//
// The zero value is an empty MapState ready to use; it is safe for
// concurrent use.
type MapState struct {
	mu sync.Mutex
	m  map[string]int64 // guarded by mu
}

var _ State = (*MapState)(nil)

// Add adds delta to key's counter and returns the new value.
func (s *MapState) Add(key string, delta int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int64{}
	}
	s.m[key] += delta
	return s.m[key]
}

// Get returns key's counter.
func (s *MapState) Get(key string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// Snapshot returns a copy of all counters.
func (s *MapState) Snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// Export implements [State].
func (s *MapState) Export(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("migrate: MapState export: %w", err)
	}
	snap := s.Snapshot()
	if snap == nil {
		snap = map[string]int64{}
	}
	if err := json.NewEncoder(w).Encode(snap); err != nil {
		return fmt.Errorf("migrate: MapState export: %w", err)
	}
	return nil
}

// Import implements [State]: it replaces every counter with those read
// from r, a JSON object of integers as Export writes. On error the state
// is unchanged.
func (s *MapState) Import(ctx context.Context, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("migrate: MapState import: %w", err)
	}
	var m map[string]int64
	dec := json.NewDecoder(r)
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("migrate: MapState import: not a JSON object of integer counters: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("migrate: MapState import: trailing data after the JSON object")
	}
	if m == nil {
		m = map[string]int64{}
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
	return nil
}
