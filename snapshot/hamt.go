package snapshot

import (
	"math/bits"
	"runtime"
	"sync"
)

// The state behind [Map] is a persistent hash array mapped trie in CHAMP
// layout: each node holds up to 32 slots, split by two bitmaps into inline
// entries and child nodes, indexed by 5 bits of the 64-bit hash per level.
// Past the 64th bit, a node is a collision list. Published nodes are never
// modified; a write copies the path from the root to its slot (O(log32 n)
// nodes), so a reader holding an old root keeps a consistent view for free.
// Nodes built by [Map.Restore] before they are published are modified in
// place (mut=true) to avoid that copying.

const (
	hamtBits  = 5
	hamtWidth = 1 << hamtBits
	hamtMask  = hamtWidth - 1
	hashBits  = 64
)

type hamtEntry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

type hamtNode[K comparable, V any] struct {
	dataMap  uint32 // slots holding an inline entry
	nodeMap  uint32 // slots holding a child node
	entries  []hamtEntry[K, V]
	children []*hamtNode[K, V]
}

func slotBit(hash uint64, shift uint) uint32 { return 1 << ((hash >> shift) & hamtMask) }

// slotIndex is the position of bit among the set bits of bitmap.
func slotIndex(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

func (n *hamtNode[K, V]) get(hash uint64, key K) (V, bool) {
	for shift := uint(0); ; shift += hamtBits {
		if shift >= hashBits {
			for i := range n.entries {
				if n.entries[i].key == key {
					return n.entries[i].val, true
				}
			}
			break
		}
		bit := slotBit(hash, shift)
		if n.dataMap&bit != 0 {
			e := &n.entries[slotIndex(n.dataMap, bit)]
			if e.hash == hash && e.key == key {
				return e.val, true
			}
			break
		}
		if n.nodeMap&bit == 0 {
			break
		}
		n = n.children[slotIndex(n.nodeMap, bit)]
	}
	var zero V
	return zero, false
}

// own returns n itself when mut, else a shallow copy whose slices are still
// shared (callers replace a slice before changing it).
func (n *hamtNode[K, V]) own(mut bool) *hamtNode[K, V] {
	if mut {
		return n
	}
	c := *n
	return &c
}

func insertAt[T any](s []T, i int, v T, mut bool) []T {
	if mut {
		var zero T
		s = append(s, zero)
		copy(s[i+1:], s[i:])
		s[i] = v
		return s
	}
	out := make([]T, len(s)+1)
	copy(out, s[:i])
	out[i] = v
	copy(out[i+1:], s[i:])
	return out
}

func removeAt[T any](s []T, i int, mut bool) []T {
	if mut {
		copy(s[i:], s[i+1:])
		var zero T
		s[len(s)-1] = zero
		return s[:len(s)-1]
	}
	out := make([]T, len(s)-1)
	copy(out, s[:i])
	copy(out[i:], s[i+1:])
	return out
}

func replaceAt[T any](s []T, i int, v T, mut bool) []T {
	if !mut {
		out := make([]T, len(s))
		copy(out, s)
		s = out
	}
	s[i] = v
	return s
}

// set returns the node with e stored, and whether the key is new.
func (n *hamtNode[K, V]) set(shift uint, e hamtEntry[K, V], mut bool) (*hamtNode[K, V], bool) {
	if shift >= hashBits {
		for i := range n.entries {
			if n.entries[i].key == e.key {
				c := n.own(mut)
				c.entries = replaceAt(c.entries, i, e, mut)
				return c, false
			}
		}
		c := n.own(mut)
		c.entries = insertAt(c.entries, len(c.entries), e, mut)
		return c, true
	}
	bit := slotBit(e.hash, shift)
	switch {
	case n.dataMap&bit != 0:
		i := slotIndex(n.dataMap, bit)
		old := n.entries[i]
		c := n.own(mut)
		if old.hash == e.hash && old.key == e.key {
			c.entries = replaceAt(c.entries, i, e, mut)
			return c, false
		}
		sub := newPair(shift+hamtBits, old, e)
		c.entries = removeAt(c.entries, i, mut)
		c.dataMap &^= bit
		c.nodeMap |= bit
		c.children = insertAt(c.children, slotIndex(c.nodeMap, bit), sub, mut)
		return c, true
	case n.nodeMap&bit != 0:
		i := slotIndex(n.nodeMap, bit)
		child, added := n.children[i].set(shift+hamtBits, e, mut)
		c := n.own(mut)
		c.children = replaceAt(c.children, i, child, mut)
		return c, added
	default:
		c := n.own(mut)
		c.dataMap |= bit
		c.entries = insertAt(c.entries, slotIndex(c.dataMap, bit), e, mut)
		return c, true
	}
}

// newPair makes the smallest subtree holding two entries with distinct keys.
func newPair[K comparable, V any](shift uint, a, b hamtEntry[K, V]) *hamtNode[K, V] {
	if shift >= hashBits {
		return &hamtNode[K, V]{entries: []hamtEntry[K, V]{a, b}}
	}
	ba, bb := slotBit(a.hash, shift), slotBit(b.hash, shift)
	if ba == bb {
		return &hamtNode[K, V]{nodeMap: ba, children: []*hamtNode[K, V]{newPair(shift+hamtBits, a, b)}}
	}
	if ba > bb {
		a, b = b, a
	}
	return &hamtNode[K, V]{dataMap: ba | bb, entries: []hamtEntry[K, V]{a, b}}
}

// single reports whether n holds exactly one entry and no children, so its
// parent can hold the entry inline instead.
func (n *hamtNode[K, V]) single() bool { return len(n.entries) == 1 && len(n.children) == 0 }

// del returns the node without key, and whether it was there.
func (n *hamtNode[K, V]) del(shift uint, hash uint64, key K) (*hamtNode[K, V], bool) {
	if shift >= hashBits {
		for i := range n.entries {
			if n.entries[i].key == key {
				c := n.own(false)
				c.entries = removeAt(c.entries, i, false)
				return c, true
			}
		}
		return n, false
	}
	bit := slotBit(hash, shift)
	switch {
	case n.dataMap&bit != 0:
		i := slotIndex(n.dataMap, bit)
		if e := n.entries[i]; e.hash != hash || e.key != key {
			return n, false
		}
		c := n.own(false)
		c.entries = removeAt(c.entries, i, false)
		c.dataMap &^= bit
		return c, true
	case n.nodeMap&bit != 0:
		i := slotIndex(n.nodeMap, bit)
		child, removed := n.children[i].del(shift+hamtBits, hash, key)
		if !removed {
			return n, false
		}
		c := n.own(false)
		switch {
		case child.single():
			// Pull the last entry up into this node.
			c.children = removeAt(c.children, i, false)
			c.nodeMap &^= bit
			c.dataMap |= bit
			c.entries = insertAt(c.entries, slotIndex(c.dataMap, bit), child.entries[0], false)
		case len(child.entries) == 0 && len(child.children) == 0:
			c.children = removeAt(c.children, i, false)
			c.nodeMap &^= bit
		default:
			c.children = replaceAt(c.children, i, child, false)
		}
		return c, true
	}
	return n, false
}

// each calls fn for every entry until fn returns false; it reports whether
// the walk finished.
func (n *hamtNode[K, V]) each(fn func(*hamtEntry[K, V]) bool) bool {
	for i := range n.entries {
		if !fn(&n.entries[i]) {
			return false
		}
	}
	for _, c := range n.children {
		if !c.each(fn) {
			return false
		}
	}
	return true
}

// buildHAMT builds the trie holding entries in one pass, in the canonical
// form a sequence of set calls produces, with every slice allocated at its
// final size: what [Map.Restore] uses instead of n inserts. It sorts an
// index of the entries (hash and position: 16 bytes without pointers, so
// the moves are cheap and need no write barriers) by an in-place radix
// partition, 5 hash bits per level, and copies each entry once, into its
// node. It keeps none of its memory and leaves entries as they are. dup is
// a key found twice, if any (the trie is then nil).
//
// From parallelBuildEntries on, the root's subtrees are built on up to
// GOMAXPROCS goroutines.
func buildHAMT[K comparable, V any](entries []hamtEntry[K, V]) (n *hamtNode[K, V], dup *hamtEntry[K, V]) {
	if len(entries) == 0 {
		return &hamtNode[K, V]{}, nil
	}
	index := make([]hashRef, len(entries))
	for i := range entries {
		index[i] = hashRef{hash: entries[i].hash, at: i}
	}
	b := builder[K, V]{entries: entries}
	if workers := runtime.GOMAXPROCS(0); workers > 1 && len(entries) >= parallelBuildEntries {
		return b.root(index, workers)
	}
	return b.node(index, 0)
}

// parallelBuildEntries is the size from which buildHAMT uses every core:
// below it starting goroutines costs about what they save.
const parallelBuildEntries = 4096

// hashRef is an entry's hash and its position in the builder's entries.
type hashRef struct {
	hash uint64
	at   int
}

type builder[K comparable, V any] struct {
	entries []hamtEntry[K, V]
}

// root is node at the root, with the subtrees built on workers goroutines,
// each taking every workers-th one (the hash spreads entries evenly over
// the slots).
func (b builder[K, V]) root(index []hashRef, workers int) (*hamtNode[K, V], *hamtEntry[K, V]) {
	var runs [hamtWidth]slotRun
	n, k := b.partition(index, 0, &runs)
	subtrees := make([]slotRun, 0, len(n.children))
	for _, r := range runs[:k] {
		if r.count > 1 {
			subtrees = append(subtrees, r)
		}
	}
	dups := make([]*hamtEntry[K, V], len(subtrees))
	workers = min(workers, len(subtrees))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(subtrees); i += workers {
				r := subtrees[i]
				n.children[i], dups[i] = b.node(index[r.start:r.start+r.count], hamtBits)
			}
		})
	}
	wg.Wait()
	for _, dup := range dups {
		if dup != nil {
			return nil, dup
		}
	}
	for _, r := range runs[:k] {
		if r.count == 1 {
			n.entries = append(n.entries, b.entries[index[r.start].at])
		}
	}
	return n, nil
}

// node builds the node holding the entries index refers to, at shift.
func (b builder[K, V]) node(index []hashRef, shift uint) (*hamtNode[K, V], *hamtEntry[K, V]) {
	if shift >= hashBits {
		// Every entry has the same 64-bit hash: a collision list.
		n := &hamtNode[K, V]{entries: make([]hamtEntry[K, V], 0, len(index))}
		for i, r := range index {
			e := &b.entries[r.at]
			for _, prev := range index[:i] {
				if b.entries[prev.at].key == e.key {
					return nil, e
				}
			}
			n.entries = append(n.entries, *e)
		}
		return n, nil
	}
	var runs [hamtWidth]slotRun
	n, k := b.partition(index, shift, &runs)
	c := 0
	for _, r := range runs[:k] {
		if r.count == 1 {
			n.entries = append(n.entries, b.entries[index[r.start].at])
			continue
		}
		child, dup := b.node(index[r.start:r.start+r.count], shift+hamtBits)
		if dup != nil {
			return nil, dup
		}
		n.children[c] = child
		c++
	}
	return n, nil
}

// slotRun is where partition put one occupied slot's references.
type slotRun struct {
	slot, start, count int
}

// smallNode is the size up to which partition sorts by insertion: at the
// trie's lower levels most nodes hold a handful of entries, and a pass
// over all 32 slots would cost more than they do.
const smallNode = 16

// partition moves every reference of index into its slot's range at shift
// and returns the node for them, with its bitmaps set and its entries and
// children allocated (empty and nil) at their final sizes, and in runs
// the occupied slots in order (k of them).
func (b builder[K, V]) partition(index []hashRef, shift uint, runs *[hamtWidth]slotRun) (n *hamtNode[K, V], k int) {
	slot := func(r hashRef) int { return int((r.hash >> shift) & hamtMask) }
	if len(index) <= smallNode {
		for i := 1; i < len(index); i++ {
			x, sx := index[i], slot(index[i])
			j := i
			for ; j > 0 && slot(index[j-1]) > sx; j-- {
				index[j] = index[j-1]
			}
			index[j] = x
		}
		for i := 0; i < len(index); {
			s, j := slot(index[i]), i+1
			for j < len(index) && slot(index[j]) == s {
				j++
			}
			runs[k] = slotRun{slot: s, start: i, count: j - i}
			k++
			i = j
		}
	} else {
		// An American flag sort: count, then swap each reference into
		// its slot's range.
		var count, next [hamtWidth]int
		for _, r := range index {
			count[slot(r)]++
		}
		for s, off := 0, 0; s < hamtWidth; s++ {
			next[s] = off
			if count[s] > 0 {
				runs[k] = slotRun{slot: s, start: off, count: count[s]}
				k++
			}
			off += count[s]
		}
		for _, r := range runs[:k] {
			for end := r.start + r.count; next[r.slot] < end; {
				i := next[r.slot]
				t := slot(index[i])
				if t == r.slot {
					next[r.slot]++
					continue
				}
				index[i], index[next[t]] = index[next[t]], index[i]
				next[t]++
			}
		}
	}
	n = &hamtNode[K, V]{}
	singles, multis := 0, 0
	for _, r := range runs[:k] {
		if r.count == 1 {
			n.dataMap |= 1 << r.slot
			singles++
		} else {
			n.nodeMap |= 1 << r.slot
			multis++
		}
	}
	if singles > 0 {
		n.entries = make([]hamtEntry[K, V], 0, singles)
	}
	if multis > 0 {
		n.children = make([]*hamtNode[K, V], multis)
	}
	return n, k
}
