package snapshot

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// DefaultShards is a [ShardedMap]'s shard count when [MapOptions.Shards]
// is zero. More shards spread writers over more locks; fewer make the
// capture pause shorter (it passes every shard: about 0.1 µs a shard on a
// busy 2-core machine) and each shard's copy-on-write longer (n/shards
// entries, while a view is open). With 256 the cut's pause was about
// 50 µs at the median on a busy 2-core machine, at 10 MB to 1 GB
// (BenchmarkContainerPause).
const DefaultShards = 256

// ShardedMap is the container to keep critical state in: tables read on
// every packet and written on every flow (routes, sessions, connection
// tracking). It is a fixed array of Go maps, each behind its own
// read-write lock, so its hot path is a sharded mutex map's: at 1M entries,
// in parallel on every core, reads, writes and a 90/10 mix cost 0.8-1.2x
// a sharded RWMutex map's in the same run, and a write of an existing key
// allocates nothing (BenchmarkContainerPaired, recorded in
// benchmarks/snapshot/SUMMARY-container.md).
//
// A capture freezes the writers (a flag each writer checks under its
// shard's lock, then one lock-unlock of every shard, so no write is half
// done), records each shard's map and bumps an epoch: O(shards),
// independent of the state's size; readers are not stopped (one may wait
// for the instant the barrier holds its shard's lock). While a view
// is open (until its Close), the first write to a shard after the capture
// copies that shard's map (about n/shards entries) before changing it, so
// the view never changes, and every write logs its key, so that
// [ShardedMapView.WriteDeltaTo] writes what changed between two views at a
// cost in proportion to the change. With no view open, writes change the
// maps in place and log nothing: the copy-on-write costs only while a
// capture is being written out.
//
// Values are shared (with views, and for []byte values with the chunks a
// restore read them from): treat a value as immutable once stored. Both
// ShardedMap and [Map] write the same view format, so either restores the
// other's snapshots.
//
// ShardedMap implements [Source], [Pauser], [Stager] and [DeltaSource]
// (its views [DeltaView] and io.Closer): during a cut its writers wait,
// its readers do not. The zero value is not usable; call
// [NewShardedMap]. All methods are safe for concurrent use.
type ShardedMap[K comparable, V any] struct {
	// The writers are frozen (see freeze) by Pause, View and Restore, so
	// that a capture sees no write half done. freezer is held from freeze
	// to unfreeze; while frozen is set, writers wait for thaw to close.
	freezer  sync.Mutex
	frozen   atomic.Bool
	thaw     atomic.Pointer[chan struct{}]
	paused   atomic.Bool                          // frozen by Pause
	pending  *ShardedMapView[K, V]                // allocated by Pause for Capture; guarded by freezer
	spare    atomic.Pointer[ShardedMapView[K, V]] // allocated when a view closes, for the next capture
	epoch    atomic.Uint64                        // bumped by each capture
	open     atomic.Int64                         // views taken and not yet closed
	restores uint64                               // bumped by each Restore; changed while frozen
	shards   []cowShard[K, V]
	shift    uint // shard index = hash >> shift
	hash     func(K) uint64
	entry    entryCodec[K, V]
}

// cowShard is one shard. live is private to the shard (writable in place)
// while owner equals the map's epoch or no view is open; otherwise a view
// may hold it and the next writer copies it first. While a view is open,
// every write appends its key to log, from which a view writes a delta
// (the keys written between two views); with no view open the log is
// dropped (logGen counts the drops).
type cowShard[K comparable, V any] struct {
	mu     sync.RWMutex // guards live, owner, log and logGen; changed by writers only while not frozen
	live   map[K]V
	owner  uint64
	log    []K // appended (never changed in place) by writers
	logGen uint64
	_      [56]byte // 128 bytes a shard: neighbouring shards' locks stay off one cache line
}

var (
	_ Source      = (*ShardedMap[string, int])(nil)
	_ Pauser      = (*ShardedMap[string, int])(nil)
	_ Stager      = (*ShardedMap[string, int])(nil)
	_ DeltaSource = (*ShardedMap[string, int])(nil)
	_ DeltaView   = (*ShardedMapView[string, int])(nil)
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

// own makes s.live private before a write of key, and logs key while a
// view is open. s.mu is held through lockWrite (so no capture runs and
// open can only fall).
func (m *ShardedMap[K, V]) own(s *cowShard[K, V], key K) {
	views := m.open.Load() > 0
	if e := m.epoch.Load(); s.owner != e {
		if views {
			s.live = maps.Clone(s.live)
		}
		s.owner = e
	}
	switch {
	case views:
		s.log = append(s.log, key)
	case s.log != nil:
		s.log = nil // a new slice next time: closed views may still point at this one
		s.logGen++
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
	s := m.shard(key)
	m.lockWrite(s)
	m.own(s, key)
	s.live[key] = value
	s.mu.Unlock()
}

// lockWrite locks s for a write, once the writers are not frozen.
func (m *ShardedMap[K, V]) lockWrite(s *cowShard[K, V]) {
	for {
		s.mu.Lock()
		if !m.frozen.Load() {
			return
		}
		thaw := m.thaw.Load()
		s.mu.Unlock()
		<-*thaw
	}
}

// freeze stops the writers: when it returns, every write has either
// finished or not started, and none starts until unfreeze. Readers are
// held up only while freeze passes their shard (one lock and unlock).
//
// It sets frozen, then locks and unlocks every shard: a writer that took
// its shard's lock before that saw frozen unset and has now finished; one
// that takes it after sees frozen set and waits for thaw.
func (m *ShardedMap[K, V]) freeze(ctx context.Context) error {
	if err := lockContext(ctx, &m.freezer); err != nil {
		return err
	}
	thaw := make(chan struct{})
	m.thaw.Store(&thaw)
	m.frozen.Store(true)
	for i := range m.shards {
		m.shards[i].mu.Lock()
		//lint:ignore SA2001 an empty critical section is the barrier: every writer that saw the map unfrozen has left its shard
		m.shards[i].mu.Unlock()
	}
	return nil
}

// unfreeze lets the writers go on.
func (m *ShardedMap[K, V]) unfreeze() {
	m.frozen.Store(false)
	close(*m.thaw.Load())
	m.freezer.Unlock()
}

// Delete removes key and reports whether it was there.
func (m *ShardedMap[K, V]) Delete(key K) bool {
	s := m.shard(key)
	m.lockWrite(s)
	defer s.mu.Unlock()
	if _, ok := s.live[key]; !ok {
		return false
	}
	m.own(s, key)
	delete(s.live, key)
	return true
}

// Update atomically replaces key's value with fn(old, ok), like
// [Map.Update]. fn runs under the shard's lock and must not call m.
func (m *ShardedMap[K, V]) Update(key K, fn func(old V, ok bool) (V, bool)) {
	s := m.shard(key)
	m.lockWrite(s)
	defer s.mu.Unlock()
	old, ok := s.live[key]
	val, keep := fn(old, ok)
	switch {
	case keep:
		m.own(s, key)
		s.live[key] = val
	case ok:
		m.own(s, key)
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
func (m *ShardedMap[K, V]) Range(fn func(K, V) bool) {
	v := m.View()
	defer v.Close()
	v.Range(fn)
}

// Pause implements [Pauser]: it blocks writers (readers carry on) until
// Resume. It returns ctx's error if a writer does not finish in time.
func (m *ShardedMap[K, V]) Pause(ctx context.Context) error {
	v := m.spareView()
	if err := m.freeze(ctx); err != nil {
		return fmt.Errorf("snapshot: sharded map pause: %w", err)
	}
	m.pending = v
	m.paused.Store(true)
	return nil
}

// Resume implements [Pauser]: it lets writers continue.
func (m *ShardedMap[K, V]) Resume() {
	m.paused.Store(false)
	m.pending = nil
	m.unfreeze()
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
		v := m.pending
		if v == nil { // a second Capture in one pause
			v = m.newView()
		}
		m.pending = nil
		return m.capture(v), nil
	}
	return m.View(), nil
}

// View returns the map's current state as an immutable [ShardedMapView].
// It holds the writers off for O(shards); it must not be called by the
// goroutine that holds Pause (Capture is the call to make there). Close
// the view when done with it: until then the first write to each shard
// after the view was taken copies the shard, and writes are logged for
// deltas (a view dropped without Close is closed by the garbage
// collector, later).
func (m *ShardedMap[K, V]) View() *ShardedMapView[K, V] {
	v := m.spareView()
	_ = m.freeze(context.Background()) // cannot fail without a deadline
	defer m.unfreeze()
	return m.capture(v)
}

// newView allocates a view for capture to fill: before the writers are
// frozen, so that the pause does not wait for the allocation.
func (m *ShardedMap[K, V]) newView() *ShardedMapView[K, V] {
	v := &ShardedMapView[K, V]{
		shards: make([]viewShard[K, V], len(m.shards)),
		shift:  m.shift,
		hash:   m.hash,
		codec:  m.entry,
		src:    m,
		closed: &viewClosed{open: &m.open},
	}
	v.size = sync.OnceValue(func() int {
		n := 0
		for i := range v.shards {
			n += len(v.shards[i].live)
		}
		return n
	})
	runtime.AddCleanup(v, func(c *viewClosed) { c.close() }, v.closed)
	return v
}

// spareView returns the view allocated for the next capture when the
// last one closed, or a new one: a capture inside a cut then allocates
// nothing while the cut is being timed (an allocation there may be made to
// help the garbage collector for tens of microseconds).
func (m *ShardedMap[K, V]) spareView() *ShardedMapView[K, V] {
	if v := m.spare.Swap(nil); v != nil {
		return v
	}
	return m.newView()
}

// capture fills v (from newView) with every shard's map and log; the
// writers are frozen.
func (m *ShardedMap[K, V]) capture(v *ShardedMapView[K, V]) *ShardedMapView[K, V] {
	v.epoch = m.epoch.Add(1) // every shard's next writer copies before writing
	v.restores = m.restores
	v.closed.counted.Store(true)
	m.open.Add(1)
	// No shard lock is needed: live and log only change in writes, which
	// are frozen (freeze's barrier orders the last ones before this), and
	// readers do not change them.
	for i := range m.shards {
		s := &m.shards[i]
		v.shards[i] = viewShard[K, V]{live: s.live, log: s.log, logGen: s.logGen}
	}
	return v
}

// viewClosed counts a view out of its map's open views, once.
type viewClosed struct {
	counted atomic.Bool // set by capture, which counts the view in open
	done    atomic.Bool
	open    *atomic.Int64
}

func (c *viewClosed) close() {
	if c.counted.Load() && c.done.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
}

// ShardedMapView is an immutable view of a [ShardedMap]. It is safe for
// concurrent use until Close.
type ShardedMapView[K comparable, V any] struct {
	shards   []viewShard[K, V] // never written: writers copy a shard before changing it
	size     func() int        // counted on first use, outside the pause (each shard's len is a cache miss)
	shift    uint
	hash     func(K) uint64
	codec    entryCodec[K, V]
	src      *ShardedMap[K, V]
	epoch    uint64 // the map's epoch this view was taken at
	restores uint64 // the map's restores then
	closed   *viewClosed
}

// viewShard is one shard as a view saw it.
type viewShard[K comparable, V any] struct {
	live   map[K]V
	log    []K
	logGen uint64
}

// Close releases the view: writers stop copying shards for it and stop
// logging keys for deltas from it. The view must not be used afterwards.
// It always returns nil; closing twice is harmless.
func (v *ShardedMapView[K, V]) Close() error {
	if v.closed.done.Load() {
		return nil
	}
	v.closed.close()
	if v.src.spare.Load() == nil {
		v.src.spare.CompareAndSwap(nil, v.src.newView())
	}
	return nil
}

// Len returns the number of entries in the view.
func (v *ShardedMapView[K, V]) Len() int { return v.size() }

// Load returns the value key had in the view.
func (v *ShardedMapView[K, V]) Load(key K) (V, bool) {
	val, ok := v.shards[v.shardOf(key)].live[key]
	return val, ok
}

func (v *ShardedMapView[K, V]) shardOf(key K) uint64 {
	if v.shift >= 64 {
		return 0
	}
	return v.hash(key) >> v.shift
}

// Range calls fn for each entry of the view until fn returns false.
func (v *ShardedMapView[K, V]) Range(fn func(K, V) bool) {
	for i := range v.shards {
		for k, val := range v.shards[i].live {
			if !fn(k, val) {
				return
			}
		}
	}
}

// WriteTo implements [View], in the same format as [MapView.WriteTo].
func (v *ShardedMapView[K, V]) WriteTo(w io.Writer) (int64, error) {
	return v.codec.write(w, v.size(), v.Range)
}

// WriteDeltaTo implements [DeltaView]: it writes the entries set and the
// keys deleted between base and v, in the format described at
// [deltaMagic], reading only the keys written in between (each shard's
// write log), never the unchanged state. base must be an earlier view of
// the same map, and both must still be open; otherwise the error matches
// [ErrDeltaBase] and nothing is written.
func (v *ShardedMapView[K, V]) WriteDeltaTo(w io.Writer, base View) (int64, error) {
	b, ok := base.(*ShardedMapView[K, V])
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: base is a %T, not a view of this sharded map", ErrDeltaBase, base)
	case b.src != v.src:
		return 0, fmt.Errorf("%w: base is a view of another sharded map", ErrDeltaBase)
	case b.epoch > v.epoch:
		return 0, fmt.Errorf("%w: base (capture %d) was taken after this view (capture %d)", ErrDeltaBase, b.epoch, v.epoch)
	case b.restores != v.restores:
		return 0, fmt.Errorf("%w: the map was restored between base and this view", ErrDeltaBase)
	case b.closed.done.Load() || v.closed.done.Load():
		return 0, fmt.Errorf("%w: base or this view is closed", ErrDeltaBase)
	}
	for i := range v.shards {
		if b.shards[i].logGen != v.shards[i].logGen {
			return 0, fmt.Errorf("%w: shard %d's write log was dropped between base and this view", ErrDeltaBase, i)
		}
	}
	d := newDeltaWriter(w, v.codec)
	seen := map[K]struct{}{}
	for i := range v.shards {
		vs := &v.shards[i]
		written := vs.log[len(b.shards[i].log):]
		if len(written) == 0 {
			continue
		}
		clear(seen)
		for _, k := range written {
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			if val, ok := vs.live[k]; ok {
				d.set(k, val)
			} else {
				d.del(k)
			}
		}
	}
	return d.close()
}

// ApplyDelta implements [DeltaSource]: it reads and verifies the whole
// delta r holds (format, checksum, every key and value), then applies it
// with the writers paused (readers see it shard by shard). A delta that
// fails to verify changes nothing; the error names the record at fault.
func (m *ShardedMap[K, V]) ApplyDelta(ctx context.Context, r io.Reader) error {
	ops, err := readDelta(ctx, r, m.entry)
	if err != nil {
		return err
	}
	if err := m.Pause(ctx); err != nil {
		return fmt.Errorf("snapshot: apply delta: %w", err)
	}
	defer m.Resume()
	for _, op := range ops {
		s := m.shard(op.key)
		s.mu.Lock()
		m.own(s, op.key)
		if op.del {
			delete(s.live, op.key)
		} else {
			s.live[op.key] = op.val
		}
		s.mu.Unlock()
	}
	return nil
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
	sized := func(count uint64) {
		// Presize each shard for its share of the entries (hashes spread
		// them evenly), so that decoding does not grow maps step by step.
		per := min(count/uint64(len(fresh))+count/uint64(8*len(fresh))+1, 1<<12) // a damaged count cannot make it allocate much
		for i := range fresh {
			fresh[i] = make(map[K]V, per)
		}
	}
	err := m.entry.read(ctx, r, sized, func(key K, val V) bool {
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
	m.restores++
	e := m.epoch.Load()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.live, s.owner = fresh[i], e
		s.mu.Unlock()
	}
}
