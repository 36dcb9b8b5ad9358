package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Persistence against the peers a user would otherwise pick (issue 17),
// with every side fsyncing what it writes before it returns:
//
//   - impl=updraft: an Engine snapshotting a Map to a FileStore (footer
//     checksum, fsync, rename, directory fsync), restored into a Map.
//   - impl=gob: encoding/gob of a Go map to a temporary file, fsync,
//     rename, directory fsync; read back with os.ReadFile and gob.
//   - impl=bbolt-new: a new bbolt file per snapshot (one transaction, whose
//     commit fsyncs; the directory is fsynced and the previous file removed).
//   - impl=bbolt-overwrite: one bbolt file kept open, every key rewritten
//     in one transaction per snapshot (commit fsyncs).
//   - impl=raft: hashicorp/raft's FileSnapshotStore (retain 1) holding the
//     gob encoding, as an FSM's Persist would write it; its Close fsyncs
//     the state, the metadata and the directory.
//
// op=write persists the whole state; op=read reads the newest copy back
// into a container of the side's own (bbolt: one read transaction over a
// file opened read-only). Every side holds the same entries: persistEntries
// keys 0..n-1, each with a persistValueBytes value, about 10 MB of state.
//
//	go test -run '^$' -bench Persist -benchtime 5x -count 3 ./snapshot
const (
	persistEntries    = 100_000
	persistValueBytes = 96 // + an 8-byte key: 10.4 MB of state
)

// persistSide is one implementation under benchmark: setup prepares it in
// dir for the state src.
type persistSide struct {
	name  string
	setup func(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun
}

// persistRun is a side ready to run: write persists the state; read reads
// the newest copy back into the side's container; contents returns what
// the last read read, as a Go map, for checks (it is not timed); close
// releases what setup opened. Used by one goroutine.
type persistRun struct {
	write    func() error
	read     func() error
	contents func() map[uint64][]byte
	close    func()
}

// plainRun is a persistRun for a side whose read returns a Go map.
func plainRun(write func() error, read func() (map[uint64][]byte, error), close func()) *persistRun {
	var last map[uint64][]byte
	return &persistRun{
		write:    write,
		read:     func() (err error) { last, err = read(); return err },
		contents: func() map[uint64][]byte { return last },
		close:    close,
	}
}

func persistSides() []persistSide {
	return []persistSide{
		{"updraft", setupUpdraft},
		{"gob", setupGob},
		{"bbolt-new", setupBboltNew},
		{"bbolt-overwrite", setupBboltOverwrite},
		{"raft", setupRaft},
	}
}

func persistState(tb testing.TB, n int) (*Map[uint64, []byte], map[uint64][]byte) {
	m, err := NewMap(MapOptions[uint64, []byte]{})
	if err != nil {
		tb.Fatal(err)
	}
	plain := make(map[uint64][]byte, n)
	for i := range n {
		v := testValue(uint64(i), persistValueBytes)
		m.Store(uint64(i), v)
		plain[uint64(i)] = v
	}
	return m, plain
}

func setupUpdraft(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun {
	e := engineOver(tb, src, dir, CompressionDefault)
	dst, err := NewMap(MapOptions[uint64, []byte]{})
	if err != nil {
		tb.Fatal(err)
	}
	restorer, err := New(e.Store(), map[string]Source{"state": dst}, Options{AppVersion: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var last Manifest
	return &persistRun{
		write:    func() (err error) { last, err = e.Snapshot(ctx); return err },
		read:     func() error { return restorer.Restore(ctx, last) },
		contents: func() map[uint64][]byte { return mapOf(dst) },
		close:    func() {},
	}
}

// mapOf returns src as a Go map, the container the peers hold state in.
func mapOf(src *Map[uint64, []byte]) map[uint64][]byte {
	out := make(map[uint64][]byte, src.Len())
	src.Range(func(k uint64, v []byte) bool { out[k] = v; return true })
	return out
}

// writeGobDurably writes m's gob encoding to path: temporary file, fsync,
// rename, directory fsync.
func writeGobDurably(path string, m map[uint64][]byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := gob.NewEncoder(bw).Encode(m); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func readGob(r io.Reader) (map[uint64][]byte, error) {
	var m map[uint64][]byte
	err := gob.NewDecoder(r).Decode(&m)
	return m, err
}

func setupGob(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun {
	state := mapOf(src)
	path := filepath.Join(dir, "state.gob")
	write := func() error { return writeGobDurably(path, state) }
	read := func() (map[uint64][]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return readGob(bytes.NewReader(b))
	}
	return plainRun(write, read, func() {})
}

var boltBucket = []byte("state")

func boltKey(k uint64) []byte { return binary.BigEndian.AppendUint64(nil, k) }

// putAll writes every entry of state, in key order, in one transaction.
func putAll(db *bolt.DB, state map[uint64][]byte, fill float64) error {
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(boltBucket)
		if err != nil {
			return err
		}
		b.FillPercent = fill
		for k := range uint64(len(state)) {
			if err := b.Put(boltKey(k), state[k]); err != nil {
				return err
			}
		}
		return nil
	})
}

func readBolt(path string) (map[uint64][]byte, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[uint64][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		if b == nil {
			return fmt.Errorf("bucket %q missing", boltBucket)
		}
		return b.ForEach(func(k, v []byte) error {
			out[binary.BigEndian.Uint64(k)] = bytes.Clone(v) // v lives as long as the transaction
			return nil
		})
	})
	return out, err
}

// setupBboltNew writes each snapshot to a new file, with keys in order and
// full pages (bbolt's best case for sequential keys), then removes the
// previous file.
func setupBboltNew(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun {
	state := mapOf(src)
	n, current := 0, ""
	write := func() error {
		n++
		path := filepath.Join(dir, fmt.Sprintf("state-%d.db", n))
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			return err
		}
		if err := putAll(db, state, 1.0); err != nil {
			db.Close()
			return err
		}
		if err := db.Close(); err != nil {
			return err
		}
		if err := syncDir(dir); err != nil { // the new file's name
			return err
		}
		if current != "" {
			if err := os.Remove(current); err != nil {
				return err
			}
		}
		current = path
		return nil
	}
	read := func() (map[uint64][]byte, error) { return readBolt(current) }
	return plainRun(write, read, func() {})
}

// setupBboltOverwrite keeps one database open and rewrites every key.
func setupBboltOverwrite(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun {
	state := mapOf(src)
	path := filepath.Join(dir, "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syncDir(dir); err != nil {
		tb.Fatal(err)
	}
	write := func() error { return putAll(db, state, bolt.DefaultFillPercent) }
	read := func() (map[uint64][]byte, error) {
		out := map[uint64][]byte{}
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(boltBucket)
			if b == nil {
				return fmt.Errorf("bucket %q missing", boltBucket)
			}
			return b.ForEach(func(k, v []byte) error {
				out[binary.BigEndian.Uint64(k)] = bytes.Clone(v)
				return nil
			})
		})
		return out, err
	}
	return plainRun(write, read, func() { db.Close() })
}

func setupRaft(tb testing.TB, dir string, src *Map[uint64, []byte]) *persistRun {
	state := mapOf(src)
	store, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	var index uint64
	write := func() error {
		index++ // a snapshot's name is its term, index and millisecond
		sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(sink, 1<<20)
		if err := gob.NewEncoder(bw).Encode(state); err != nil {
			sink.Cancel()
			return err
		}
		if err := bw.Flush(); err != nil {
			sink.Cancel()
			return err
		}
		return sink.Close()
	}
	read := func() (map[uint64][]byte, error) {
		metas, err := store.List()
		if err != nil {
			return nil, err
		}
		if len(metas) == 0 {
			return nil, fmt.Errorf("raft: no snapshot")
		}
		_, rc, err := store.Open(metas[0].ID)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readGob(bufio.NewReaderSize(rc, 1<<20))
	}
	return plainRun(write, read, func() {})
}

// TestPersistSidesRoundTrip checks that every benchmarked side writes and
// reads back exactly the state it is given, and that the state is what the
// benchmark claims: persistEntries distinct keys, persistValueBytes each.
func TestPersistSidesRoundTrip(t *testing.T) {
	src, want := persistState(t, 2000)
	for _, side := range persistSides() {
		t.Run(side.name, func(t *testing.T) {
			run := side.setup(t, t.TempDir(), src)
			defer run.close()
			for range 2 { // a second write replaces the first
				if err := run.write(); err != nil {
					t.Fatal(err)
				}
			}
			if err := run.read(); err != nil {
				t.Fatal(err)
			}
			got := run.contents()
			if len(got) != len(want) {
				t.Fatalf("read %d entries, want %d", len(got), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("entry %d: read %x, want %x", k, got[k], v)
				}
			}
		})
	}
	big, plain := persistState(t, persistEntries)
	if big.Len() != persistEntries || len(plain) != persistEntries {
		t.Fatalf("benchmark state has %d/%d entries, want %d", big.Len(), len(plain), persistEntries)
	}
	for k, v := range plain {
		if len(v) != persistValueBytes {
			t.Fatalf("value of %d has %d bytes", k, len(v))
		}
	}
}

func BenchmarkPersist(b *testing.B) {
	src, _ := persistState(b, persistEntries)
	raw := int64(persistEntries * (8 + persistValueBytes))
	for _, op := range []string{"write", "read"} {
		for _, side := range persistSides() {
			b.Run("op="+op+"/impl="+side.name, func(b *testing.B) {
				run := side.setup(b, b.TempDir(), src)
				defer run.close()
				do := run.write
				if op == "read" {
					if err := run.write(); err != nil {
						b.Fatal(err)
					}
					do = run.read
				}
				b.SetBytes(raw)
				b.ResetTimer()
				for b.Loop() {
					if err := do(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if op == "read" && len(run.contents()) != persistEntries {
					b.Fatalf("read %d entries, want %d", len(run.contents()), persistEntries)
				}
			})
		}
	}
}

// persist is the baseline snapshot of BenchmarkSnapshot and
// BenchmarkPaired, made as durable as updraft's: the map is cloned under
// the lock (values are never mutated in place), then encoded with gob and
// written with writeGobDurably (fsync, rename, directory fsync) outside it.
func (b *mutexMap) persist(path string) error {
	b.mu.Lock()
	m := maps.Clone(b.m)
	b.mu.Unlock()
	return writeGobDurably(path, m)
}
