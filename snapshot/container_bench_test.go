package snapshot

import (
	"context"
	"encoding/gob"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
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

// BenchmarkContainerPaired runs the same operations on every container in
// turn within each iteration (a block of containerBlock operations per
// goroutine, one goroutine per core, the order rotating), so that all see
// the same machine: on shared cores the load changes between separate
// sub-benchmarks by more than the differences measured. It reports each
// container's time per operation (impl-ns/op), bytes allocated per
// operation (impl-B/op: the garbage), its ratio to the baseline over the
// whole run (impl/rwmutex) and the median of the per-iteration ratios
// (impl/rwmutex-p50: a burst of load from a neighbour skews one
// iteration, not the median).
func BenchmarkContainerPaired(b *testing.B) {
	impls := benchContainers(b)
	const containerBlock = 5_000
	procs := runtime.GOMAXPROCS(0)
	for _, op := range []struct {
		name     string
		setEvery uint64
	}{{"get", 0}, {"set", 1}, {"mixed90-10", 10}} {
		b.Run("op="+op.name, func(b *testing.B) {
			elapsed := make([]time.Duration, len(impls))
			allocated := make([]uint64, len(impls))
			streams := make([][]*keyStream, len(impls))
			for i := range impls {
				for range procs {
					streams[i] = append(streams[i], nextKeyStream(containerEntries))
				}
			}
			var ms runtime.MemStats
			round := 0
			ratios := make([][]float64, len(impls))
			for b.Loop() {
				took := make([]time.Duration, len(impls))
				for j := range impls {
					i := (j + round) % len(impls)
					c := impls[i].c
					runtime.ReadMemStats(&ms)
					before := ms.TotalAlloc
					start := time.Now()
					var wg sync.WaitGroup
					for p := range procs {
						keys := streams[i][p]
						wg.Go(func() {
							for n := uint64(1); n <= containerBlock; n++ {
								k := keys.next()
								if op.setEvery != 0 && n%op.setEvery == 0 {
									c.Store(k, n)
								} else if _, ok := c.Load(k); !ok {
									b.Errorf("key %d missing", k)
									return
								}
							}
						})
					}
					wg.Wait()
					took[i] = time.Since(start)
					elapsed[i] += took[i]
					runtime.ReadMemStats(&ms)
					allocated[i] += ms.TotalAlloc - before
				}
				for i := range impls {
					ratios[i] = append(ratios[i], took[i].Seconds()/took[len(impls)-1].Seconds())
				}
				round++
			}
			ops := float64(b.N * procs * containerBlock)
			base := elapsed[len(impls)-1]
			for i, impl := range impls {
				b.ReportMetric(float64(elapsed[i].Nanoseconds())/ops, impl.name+"-ns/op")
				b.ReportMetric(float64(allocated[i])/ops, impl.name+"-B/op")
				if i < len(impls)-1 {
					b.ReportMetric(elapsed[i].Seconds()/base.Seconds(), impl.name+"/rwmutex")
					slices.Sort(ratios[i])
					b.ReportMetric(ratios[i][len(ratios[i])/2], impl.name+"/rwmutex-p50")
				}
			}
		})
	}
}

// cloneUnderLock is the fair baseline capture: clone the map under its
// lock (the pause), encode the clone outside it.
func (b *mutexMap) cloneUnderLock() map[uint64][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.m)
}

// BenchmarkContainerPause measures the pause writers see for a capture of
// the same state (1 KB values) at 10 MB, 100 MB and 1 GB: ShardedMap and
// Map through the engine's cut (pause, capture, resume), against the fair
// baseline, a mutex-guarded Go map cloned under its lock. Each side then
// encodes its capture outside the pause (not timed) and releases it.
//
//	UPDRAFT_BENCH_1GB=1 go test -run '^$' -bench 'ContainerPause|Delta' -benchtime 3x ./snapshot
func BenchmarkContainerPause(b *testing.B) {
	forEachSize(b, func(b *testing.B, s *benchState) {
		for _, impl := range []struct {
			name string
			src  Source
		}{{"sharded", s.sharded}, {"map", s.ours}} {
			b.Run("impl="+impl.name, func(b *testing.B) {
				e, err := New(NewMemStore(), map[string]Source{"state": impl.src}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				var pauses []time.Duration
				for b.Loop() {
					views, pause, err := e.cut(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					pauses = append(pauses, pause)
					b.StopTimer()
					if _, err := views[0].WriteTo(io.Discard); err != nil {
						b.Fatal(err)
					}
					closeViews(views)
					b.StartTimer()
				}
				reportPauses(b, pauses)
			})
		}
		b.Run("impl=baseline-clone", func(b *testing.B) {
			var pauses []time.Duration
			for b.Loop() {
				start := time.Now()
				c := s.baseline.cloneUnderLock()
				pauses = append(pauses, time.Since(start))
				b.StopTimer()
				if err := gob.NewEncoder(io.Discard).Encode(c); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			reportPauses(b, pauses)
		})
	})
}

// reportPauses reports the mean, median and longest pause: on shared cores
// a pause of microseconds is sometimes stretched by a descheduling, which
// the mean of a few runs shows and the median does not.
func reportPauses(b *testing.B, pauses []time.Duration) {
	var total time.Duration
	for _, p := range pauses {
		total += p
	}
	slices.Sort(pauses)
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(pauses)), "pause-ns/op")
	b.ReportMetric(float64(pauses[len(pauses)/2].Nanoseconds()), "p50-pause-ns")
	b.ReportMetric(float64(pauses[len(pauses)-1].Nanoseconds()), "max-pause-ns")
}

// BenchmarkDelta measures what the hand-over's final delta costs against a
// full capture of the same view: each iteration takes a view, changes 1 MB
// (1024 entries of 1 KB), takes a second view, then writes (op=delta) the
// delta between them or (op=full) the second view whole, to io.Discard.
func BenchmarkDelta(b *testing.B) {
	forEachSize(b, func(b *testing.B, s *benchState) {
		m := s.sharded
		keys := nextKeyStream(uint64(m.Len()))
		value := testValue(1, benchValueBytes)
		for _, op := range []string{"delta", "full"} {
			b.Run("op="+op, func(b *testing.B) {
				var written int64
				for b.Loop() {
					b.StopTimer()
					base := m.View()
					for range 1024 {
						m.Store(keys.next(), value)
					}
					next := m.View()
					b.StartTimer()
					var n int64
					var err error
					if op == "delta" {
						n, err = next.WriteDeltaTo(io.Discard, base)
					} else {
						n, err = next.WriteTo(io.Discard)
					}
					if err != nil {
						b.Fatal(err)
					}
					written += n
					b.StopTimer()
					base.Close()
					next.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(written)/float64(b.N), "bytes/op")
			})
		}
	})
}
