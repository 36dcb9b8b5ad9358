package snapshot

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"sync"
	"sync/atomic"
)

// DefaultShards is a [ShardedMap]'s shard count when [MapOptions.Shards]
// is zero.
const DefaultShards = 1024

// ShardedMap is a concurrent map for critical state that is written on the
// hot path. It is a fixed array of Go maps, each behind its own lock, made
// copy-on-write by capture: a capture only records each shard's map and
// bumps an epoch (O(shards), independent of the state's size), and the first
// write to a shard after a capture copies that shard's map before changing
// it, so views never change.
//
// Compared with [Map]: writes cost about what a mutex-guarded Go map's do
// (plus, once per shard after each capture, a copy of that shard: about
// n/shards entries), reads take a shard read lock and so may wait behind a
// writer of the same shard, and capture is a few microseconds instead of a
// few nanoseconds. Pick Map when reads dominate, ShardedMap when writes are
// frequent. Both write the same view format, so either restores the other's
// snapshots. As with Map, values are shared (with views, and for []byte
// values with the chunks a restore read them from): treat a value as
// immutable once stored.
//
// ShardedMap implements [Source] and [Pauser]: during a cut its writers
// block, its readers do not. The zero value is not usable; call
// [NewShardedMap]. All methods are safe for concurrent use.
type ShardedMap[K comparable, V any] struct {
	// gate is held shared by writers and exclusively by Pause, capture and
	// Restore, so a capture sees no write half done.
	gate   sync.RWMutex
	paused atomic.Bool   // gate is held exclusively by Pause
	epoch  atomic.Uint64 // bumped by each capture
	shards []cowShard[K, V]
	shift  uint // shard index = hash >> shift
	hash   func(K) uint64
	entry  entryCodec[K, V]
}

// cowShard is one shard. live is private to the shard (writable in place)
// while owner equals the map's epoch; otherwise a view may hold it and the
// next writer copies it first.
type cowShard[K comparable, V any] struct {
	mu    sync.RWMutex // guards live and owner; writers of either also hold the map's gate
	live  map[K]V
	owner uint64
	_     [24]byte // keeps neighbouring shards' locks off one cache line
}

var (
	_ Source = (*ShardedMap[string, int])(nil)
	_ Pauser = (*ShardedMap[string, int])(nil)
	_ Stager = (*ShardedMap[string, int])(nil)
)

// NewShardedMap returns an empty ShardedMap.
func NewShardedMap[K comparable, V any](opts MapOptions[K, V]) (*ShardedMap[K, V], error) {
	codec, err := newEntryCodec("NewShardedMap", opts)
	if err != nil {
		return nil, err
	}
	n := opts.Shards
	if n == 0 {
		n = DefaultShards
	}
	if n < 1 || n > 1<<20 || n&(n-1) != 0 {
		return nil, fmt.Errorf("snapshot: NewShardedMap: Shards %d must be a power of two from 1 to %d", opts.Shards, 1<<20)
	}
	m := &ShardedMap[K, V]{
		shards: make([]cowShard[K, V], n),
		shift:  uint(64 - bits.TrailingZeros(uint(n))),
		hash:   opts.Hash,
		entry:  codec,
	}
	if m.hash == nil {
		m.hash = defaultHash[K]()
	}
	for i := range m.shards {
		m.shards[i].live = map[K]V{}
	}
	return m, nil
}

func (m *ShardedMap[K, V]) shard(key K) *cowShard[K, V] {
	if m.shift == 64 {
		return &m.shards[0]
	}
	return &m.shards[m.hash(key)>>m.shift]
}

// own makes s.live private before a write. s.mu is held for writing and
// m.gate shared.
func (m *ShardedMap[K, V]) own(s *cowShard[K, V]) {
	if e := m.epoch.Load(); s.owner != e {
		s.live = maps.Clone(s.live)
		s.owner = e
	}
}

// Load returns the value stored under key, and whether there is one.
func (m *ShardedMap[K, V]) Load(key K) (V, bool) {
	s := m.shard(key)
	s.mu.RLock()
	v, ok := s.live[key]
	s.mu.RUnlock()
	return v, ok
}

// Store sets key to value.
func (m *ShardedMap[K, V]) Store(key K, value V) {
	m.gate.RLock()
	s := m.shard(key)
	s.mu.Lock()
	m.own(s)
	s.live[key] = value
	s.mu.Unlock()
	m.gate.RUnlock()
}

// Delete removes key and reports whether it was there.
func (m *ShardedMap[K, V]) Delete(key K) bool {
	m.gate.RLock()
	defer m.gate.RUnlock()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[key]; !ok {
		return false
	}
	m.own(s)
	delete(s.live, key)
	return true
}

// Update atomically replaces key's value with fn(old, ok), like
// [Map.Update]. fn runs under the shard's lock and must not call m.
func (m *ShardedMap[K, V]) Update(key K, fn func(old V, ok bool) (V, bool)) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.live[key]
	val, keep := fn(old, ok)
	switch {
	case keep:
		m.own(s)
		s.live[key] = val
	case ok:
		m.own(s)
		delete(s.live, key)
	}
}

// Len returns the number of entries. With concurrent writers it is a
// moment's count, not a consistent one; a view's Len is exact.
func (m *ShardedMap[K, V]) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += len(s.live)
		s.mu.RUnlock()
	}
	return n
}

// Range calls fn for each entry of a view taken when Range starts, until fn
// returns false.
func (m *ShardedMap[K, V]) Range(fn func(K, V) bool) { m.View().Range(fn) }

// Pause implements [Pauser]: it blocks writers (readers carry on) until
// Resume. It returns ctx's error if a writer does not finish in time.
func (m *ShardedMap[K, V]) Pause(ctx context.Context) error {
	if err := lockContext(ctx, &m.gate); err != nil {
		return fmt.Errorf("snapshot: sharded map pause: %w", err)
	}
	m.paused.Store(true)
	return nil
}

// Resume implements [Pauser]: it lets writers continue.
func (m *ShardedMap[K, V]) Resume() {
	m.paused.Store(false)
	m.gate.Unlock()
}

// lockContext locks l, or gives up when ctx is done (the lock, taken later,
// is then handed straight back).
func lockContext(ctx context.Context, l sync.Locker) error {
	if tl, ok := l.(interface{ TryLock() bool }); ok && tl.TryLock() {
		return nil
	}
	locked := make(chan struct{})
	go func() {
		l.Lock()
		close(locked)
	}()
	select {
	case <-locked:
		return nil
	case <-ctx.Done():
		go func() {
			<-locked
			l.Unlock()
		}()
		return ctx.Err()
	}
}

// Capture implements [Source]: it returns a [ShardedMapView] in
// O(shards). Inside a cut (after Pause) it relies on the pause; outside one
// it holds the writers off itself for that long.
func (m *ShardedMap[K, V]) Capture(ctx context.Context) (View, error) {
	if m.paused.Load() {
		return m.capture(), nil
	}
	return m.View(), nil
}

// View returns the map's current state as an immutable [ShardedMapView].
// It holds the writers off for O(shards); it must not be called by the
// goroutine that holds Pause (Capture is the call to make there).
func (m *ShardedMap[K, V]) View() *ShardedMapView[K, V] {
	m.gate.Lock()
	defer m.gate.Unlock()
	return m.capture()
}

// capture records every shard's map; the gate is held exclusively.
func (m *ShardedMap[K, V]) capture() *ShardedMapView[K, V] {
	m.epoch.Add(1) // every shard's next writer copies before writing
	v := &ShardedMapView[K, V]{maps: make([]map[K]V, len(m.shards)), shift: m.shift, hash: m.hash, codec: m.entry}
	// No shard lock is needed: live only changes under the gate, which is
	// held exclusively here, and readers do not change it.
	for i := range m.shards {
		v.maps[i] = m.shards[i].live
		v.size += len(v.maps[i])
	}
	return v
}

// ShardedMapView is an immutable view of a [ShardedMap]. It is safe for
// concurrent use.
type ShardedMapView[K comparable, V any] struct {
	maps  []map[K]V // never written: writers copy a shard before changing it
	size  int
	shift uint
	hash  func(K) uint64
	codec entryCodec[K, V]
}

// Len returns the number of entries in the view.
func (v *ShardedMapView[K, V]) Len() int { return v.size }

// Load returns the value key had in the view.
func (v *ShardedMapView[K, V]) Load(key K) (V, bool) {
	i := uint64(0)
	if v.shift < 64 {
		i = v.hash(key) >> v.shift
	}
	val, ok := v.maps[i][key]
	return val, ok
}

// Range calls fn for each entry of the view until fn returns false.
func (v *ShardedMapView[K, V]) Range(fn func(K, V) bool) {
	for _, sm := range v.maps {
		for k, val := range sm {
			if !fn(k, val) {
				return
			}
		}
	}
}

// WriteTo implements [View], in the same format as [MapView.WriteTo].
func (v *ShardedMapView[K, V]) WriteTo(w io.Writer) (int64, error) {
	return v.codec.write(w, v.size, v.Range)
}

// Restore implements [Source]: it decodes what a view wrote into new shard
// maps and swaps them in at once; a malformed stream leaves the map as it
// was. Readers see either the old state or the new one, shard by shard.
func (m *ShardedMap[K, V]) Restore(ctx context.Context, r io.Reader) error {
	fresh, err := m.build(ctx, r)
	if err != nil {
		return err
	}
	if err := m.Pause(ctx); err != nil {
		return fmt.Errorf("snapshot: sharded map restore: %w", err)
	}
	defer m.Resume()
	m.swap(fresh)
	return nil
}

// Stage implements [Stager]: it decodes r into new shard maps, as Restore
// does, and returns the function that swaps them in (with writers paused).
// Until then the map is unchanged.
func (m *ShardedMap[K, V]) Stage(ctx context.Context, r io.Reader) (commit func(), err error) {
	fresh, err := m.build(ctx, r)
	if err != nil {
		return nil, err
	}
	return func() {
		_ = m.Pause(context.Background()) // cannot fail without a deadline
		defer m.Resume()
		m.swap(fresh)
	}, nil
}

// build decodes what a view wrote into new shard maps, without touching m.
func (m *ShardedMap[K, V]) build(ctx context.Context, r io.Reader) ([]map[K]V, error) {
	fresh := make([]map[K]V, len(m.shards))
	for i := range fresh {
		fresh[i] = map[K]V{}
	}
	err := m.entry.read(ctx, r, nil, func(key K, val V) bool {
		i := uint64(0)
		if m.shift < 64 {
			i = m.hash(key) >> m.shift
		}
		if _, dup := fresh[i][key]; dup {
			return false
		}
		fresh[i][key] = val
		return true
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// swap installs fresh; m is paused.
func (m *ShardedMap[K, V]) swap(fresh []map[K]V) {
	e := m.epoch.Load()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.live, s.owner = fresh[i], e
		s.mu.Unlock()
	}
}
