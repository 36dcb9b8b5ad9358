package snapshot

import (
	"sync"
	"testing"
)

// Benchmarks of the containers' hot path (issue 17), each beside its
// baseline in the same run: a sharded RWMutex map (rwShardedMap), what a
// careful user would otherwise write, with as many shards as ShardedMap
// and the same key hash. The keys (1M entries) come from keyStream: every
// goroutine walks its own pseudo-random order over all of them.
//
//	go test -run '^$' -bench 'Container' -benchtime 1s -count 3 ./snapshot
//
// Ratios: op=X/impl=sharded ns/op divided by op=X/impl=rwmutex-sharded
// ns/op. B/op on op=set is the garbage each write leaves.

const containerEntries = 1 << 20

// rwShardedMap is the baseline container: Go maps behind per-shard
// RWMutexes, padded apart like ShardedMap's shards.
type rwShardedMap struct {
	shards []rwShard
	shift  uint
	hash   func(uint64) uint64
}

type rwShard struct {
	mu sync.RWMutex
	m  map[uint64]uint64
	_  [32]byte
}

func newRWShardedMap(shards int) *rwShardedMap {
	b := &rwShardedMap{shards: make([]rwShard, shards), hash: defaultHash[uint64]()}
	for s := shards; s > 1; s >>= 1 {
		b.shift++
	}
	b.shift = 64 - b.shift
	for i := range b.shards {
		b.shards[i].m = map[uint64]uint64{}
	}
	return b
}

func (b *rwShardedMap) shard(k uint64) *rwShard { return &b.shards[b.hash(k)>>b.shift] }

func (b *rwShardedMap) Load(k uint64) (uint64, bool) {
	s := b.shard(k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

func (b *rwShardedMap) Store(k, v uint64) {
	s := b.shard(k)
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

// clone copies every shard under all the shard locks (a consistent cut):
// the fair baseline of a capture, encoded outside the locks afterwards.
func (b *rwShardedMap) clone() []map[uint64]uint64 {
	for i := range b.shards {
		b.shards[i].mu.Lock()
	}
	out := make([]map[uint64]uint64, len(b.shards))
	for i := range b.shards {
		out[i] = make(map[uint64]uint64, len(b.shards[i].m))
		for k, v := range b.shards[i].m {
			out[i][k] = v
		}
	}
	for i := range b.shards {
		b.shards[i].mu.Unlock()
	}
	return out
}

// hotContainer is the hot path the benchmark drives.
type hotContainer interface {
	Load(k uint64) (uint64, bool)
	Store(k, v uint64)
}

var (
	containersOnce sync.Once
	containers     []struct {
		name string
		c    hotContainer
	}
)

// benchContainers builds the 1M-entry containers once per process.
func benchContainers(b *testing.B) []struct {
	name string
	c    hotContainer
} {
	containersOnce.Do(func() {
		ours, err := NewMap(MapOptions[uint64, uint64]{})
		if err != nil {
			b.Fatal(err)
		}
		sharded, err := NewShardedMap(MapOptions[uint64, uint64]{})
		if err != nil {
			b.Fatal(err)
		}
		base := newRWShardedMap(DefaultShards)
		for i := range uint64(containerEntries) {
			ours.Store(i, i)
			sharded.Store(i, i)
			base.Store(i, i)
		}
		containers = append(containers,
			struct {
				name string
				c    hotContainer
			}{"sharded", sharded},
			struct {
				name string
				c    hotContainer
			}{"map", ours},
			struct {
				name string
				c    hotContainer
			}{"rwmutex-sharded", base})
	})
	return containers
}

// BenchmarkContainer runs get, set and a 90/10 get/set mix in parallel on
// every core over 1M entries, for ShardedMap (impl=sharded), Map
// (impl=map) and the baseline (impl=rwmutex-sharded).
func BenchmarkContainer(b *testing.B) {
	impls := benchContainers(b)
	ops := []struct {
		name     string
		setEvery uint64 // every setEvery-th operation is a set; 0 = none
	}{{"get", 0}, {"set", 1}, {"mixed90-10", 10}}
	for _, op := range ops {
		for _, impl := range impls {
			b.Run("op="+op.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				c := impl.c
				b.RunParallel(func(pb *testing.PB) {
					keys := nextKeyStream(containerEntries)
					var i uint64
					for pb.Next() {
						k := keys.next()
						i++
						if op.setEvery != 0 && i%op.setEvery == 0 {
							c.Store(k, i)
						} else if _, ok := c.Load(k); !ok {
							b.Errorf("key %d missing", k)
							return
						}
					}
				})
			})
		}
	}
}
