package snapshot

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
)

// MapOptions configures a [Map]. The zero value is valid.
type MapOptions[K comparable, V any] struct {
	// Hash hashes keys; it must be deterministic for the map's lifetime.
	// nil = a seeded hash/maphash hash (a fast mixer for integer keys).
	Hash func(K) uint64
	// Keys and Values encode keys and values in views. A zero Codec picks
	// a built-in codec for string, []byte, int, int64, uint32 and uint64,
	// and [GobCodec] for other types.
	Keys   Codec[K]
	Values Codec[V]
	// Shards is the number of shards of a [ShardedMap] (ignored by Map),
	// a power of two. 0 = [DefaultShards].
	Shards int
}

// Map is a concurrent map whose views are free: it is a persistent hash
// trie behind an atomic root pointer, so a view is the root at that moment
// (O(1), nothing copied, ever), however many views are taken and however
// long they are held while writes go on.
//
// Most state belongs in [ShardedMap] instead: Map's hot path is far slower
// than a sharded mutex map's. At 1M entries, in parallel on every core
// (BenchmarkContainerPaired), its reads cost about 3x a sharded RWMutex
// map's and its writes 9-22x, each write leaving about 1.3 KB of garbage
// in 10 allocations (it copies the path to the changed slot), so the
// garbage collector takes much of its time. Keep Map for what ShardedMap
// cannot do cheaply: state captured very often or whose views are held
// long while it is written (a ShardedMap copies each shard written while a
// view is open; Map copies only the changed paths), and readers that must
// never take a lock (Load is a few pointer loads and never waits). Writes
// are serialised by one mutex. Map implements [Source], [Pauser] and
// [Stager]: during a cut its writers block, its readers do not.
//
// Values are shared, not copied: with views and snapshots, and, for []byte
// values, a restore hands out slices of the restored chunks (a chunk's
// memory lives as long as one of its values does). Treat a value as
// immutable once stored; Store a new one to change it.
//
// The zero value is not usable; call [NewMap]. All methods are safe for
// concurrent use.
type Map[K comparable, V any] struct {
	root  atomic.Pointer[mapRoot[K, V]]
	mu    sync.Mutex // serialises writers; held from Pause to Resume
	hash  func(K) uint64
	entry entryCodec[K, V]
}

type mapRoot[K comparable, V any] struct {
	node *hamtNode[K, V]
	size int
}

var (
	_ Source = (*Map[string, int])(nil)
	_ Pauser = (*Map[string, int])(nil)
	_ Stager = (*Map[string, int])(nil)
)

// NewMap returns an empty Map.
func NewMap[K comparable, V any](opts MapOptions[K, V]) (*Map[K, V], error) {
	codec, err := newEntryCodec("NewMap", opts)
	if err != nil {
		return nil, err
	}
	m := &Map[K, V]{hash: opts.Hash, entry: codec}
	if m.hash == nil {
		m.hash = defaultHash[K]()
	}
	m.root.Store(&mapRoot[K, V]{node: &hamtNode[K, V]{}})
	return m, nil
}

func (m *Map[K, V]) codec() entryCodec[K, V] { return m.entry }

// defaultHash returns a seeded hash for K; integer keys get a fast mixer.
func defaultHash[K comparable]() func(K) uint64 {
	seed := maphash.MakeSeed()
	salt := maphash.Comparable(seed, 0)
	var h any
	switch reflect.TypeFor[K]() {
	case reflect.TypeFor[uint64]():
		h = func(k uint64) uint64 { return mix64(k ^ salt) }
	case reflect.TypeFor[int64]():
		h = func(k int64) uint64 { return mix64(uint64(k) ^ salt) }
	case reflect.TypeFor[int]():
		h = func(k int) uint64 { return mix64(uint64(k) ^ salt) }
	case reflect.TypeFor[uint32]():
		h = func(k uint32) uint64 { return mix64(uint64(k) ^ salt) }
	case reflect.TypeFor[string]():
		h = func(k string) uint64 { return maphash.String(seed, k) }
	default:
		return func(k K) uint64 { return maphash.Comparable(seed, k) }
	}
	return h.(func(K) uint64)
}

// mix64 is the splitmix64 finaliser: a bijection that spreads every input
// bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Load returns the value stored under key, and whether there is one.
func (m *Map[K, V]) Load(key K) (V, bool) {
	return m.root.Load().node.get(m.hash(key), key)
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int { return m.root.Load().size }

// Store sets key to value.
func (m *Map[K, V]) Store(key K, value V) {
	e := hamtEntry[K, V]{hash: m.hash(key), key: key, val: value}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.root.Load()
	n, added := r.node.set(0, e, false)
	size := r.size
	if added {
		size++
	}
	m.root.Store(&mapRoot[K, V]{node: n, size: size})
}

// Delete removes key and reports whether it was there.
func (m *Map[K, V]) Delete(key K) bool {
	h := m.hash(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.root.Load()
	n, removed := r.node.del(0, h, key)
	if removed {
		m.root.Store(&mapRoot[K, V]{node: n, size: r.size - 1})
	}
	return removed
}

// Update atomically replaces key's value with fn(old, ok): fn sees the
// current value (ok is false when absent) and returns the new value and
// whether to keep it (false deletes the key). fn runs under the writer lock
// and must be quick and must not call m.
func (m *Map[K, V]) Update(key K, fn func(old V, ok bool) (V, bool)) {
	h := m.hash(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.root.Load()
	old, ok := r.node.get(h, key)
	val, keep := fn(old, ok)
	switch {
	case keep:
		n, added := r.node.set(0, hamtEntry[K, V]{hash: h, key: key, val: val}, false)
		size := r.size
		if added {
			size++
		}
		m.root.Store(&mapRoot[K, V]{node: n, size: size})
	case ok:
		n, _ := r.node.del(0, h, key)
		m.root.Store(&mapRoot[K, V]{node: n, size: r.size - 1})
	}
}

// Range calls fn for each entry of the map as it was when Range started,
// in no particular order, until fn returns false. Writes during Range are
// not seen and not blocked.
func (m *Map[K, V]) Range(fn func(K, V) bool) {
	m.root.Load().node.each(func(e *hamtEntry[K, V]) bool { return fn(e.key, e.val) })
}

// Pause implements [Pauser]: it blocks writers (readers carry on) until
// Resume. It returns ctx's error if a writer does not finish in time.
func (m *Map[K, V]) Pause(ctx context.Context) error {
	if err := lockContext(ctx, &m.mu); err != nil {
		return fmt.Errorf("snapshot: map pause: %w", err)
	}
	return nil
}

// Resume implements [Pauser]: it lets writers continue.
func (m *Map[K, V]) Resume() { m.mu.Unlock() }

// Capture implements [Source]: it returns a [MapView] of the current state
// in O(1). It may be called without Pause; the view is then consistent for
// this map alone.
func (m *Map[K, V]) Capture(ctx context.Context) (View, error) {
	return m.View(), nil
}

// View returns the map's current state as an immutable [MapView], in O(1).
func (m *Map[K, V]) View() *MapView[K, V] {
	return &MapView[K, V]{root: m.root.Load(), hash: m.hash, codec: m.entry}
}

// MapView is an immutable view of a [Map]: what it held when the view was
// taken. It is safe for concurrent use.
type MapView[K comparable, V any] struct {
	root  *mapRoot[K, V]
	hash  func(K) uint64
	codec entryCodec[K, V]
}

// Len returns the number of entries in the view.
func (v *MapView[K, V]) Len() int { return v.root.size }

// Load returns the value key had in the view.
func (v *MapView[K, V]) Load(key K) (V, bool) { return v.root.node.get(v.hash(key), key) }

// Range calls fn for each entry of the view until fn returns false.
func (v *MapView[K, V]) Range(fn func(K, V) bool) {
	v.root.node.each(func(e *hamtEntry[K, V]) bool { return fn(e.key, e.val) })
}

// WriteTo implements [View]: it writes the view's entries with the map's
// codecs in the format described at [entryCodec], buffering at most a few
// entries.
func (v *MapView[K, V]) WriteTo(w io.Writer) (int64, error) {
	return v.codec.write(w, v.root.size, func(yield func(K, V) bool) {
		v.root.node.each(func(e *hamtEntry[K, V]) bool { return yield(e.key, e.val) })
	})
}

// maxRestoreHint caps how many entries Map.Restore allocates room for up
// front from the stream's own count.
const maxRestoreHint = 1 << 22

// Restore implements [Source]: it decodes what a [MapView] (or a
// [ShardedMapView]) wrote, builds the new state aside, and swaps it in at
// once; a malformed stream leaves the map as it was and returns an error
// naming the entry and field at fault. Readers see either the old state or
// the new one.
func (m *Map[K, V]) Restore(ctx context.Context, r io.Reader) error {
	root, err := m.build(ctx, r)
	if err != nil {
		return err
	}
	if err := m.Pause(ctx); err != nil {
		return fmt.Errorf("snapshot: map restore: %w", err)
	}
	m.root.Store(root)
	m.Resume()
	return nil
}

// Stage implements [Stager]: it decodes r into a new trie, as Restore does,
// and returns the function that swaps it in (atomically: readers see the
// old state or the new one). Until then the map is unchanged.
func (m *Map[K, V]) Stage(ctx context.Context, r io.Reader) (commit func(), err error) {
	root, err := m.build(ctx, r)
	if err != nil {
		return nil, err
	}
	return func() {
		m.mu.Lock() // as Pause: writers finish first
		m.root.Store(root)
		m.mu.Unlock()
	}, nil
}

// build decodes what a view wrote into a new root, without touching m.
func (m *Map[K, V]) build(ctx context.Context, r io.Reader) (*mapRoot[K, V], error) {
	// Gather the entries, then build the trie in one pass (buildHAMT):
	// several times faster than inserting them one by one.
	var entries []hamtEntry[K, V]
	sized := func(n uint64) { entries = make([]hamtEntry[K, V], 0, min(n, maxRestoreHint)) }
	err := m.codec().read(ctx, r, sized, func(key K, val V) bool {
		entries = append(entries, hamtEntry[K, V]{hash: m.hash(key), key: key, val: val})
		return true
	})
	if err != nil {
		return nil, err
	}
	node, dup := buildHAMT(entries)
	if dup != nil {
		return nil, fmt.Errorf("snapshot: map restore: duplicate key %v", dup.key)
	}
	return &mapRoot[K, V]{node: node, size: len(entries)}, nil
}
