package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/updraft-dev/updraft/snapshot"
)

// Defaults for zero [Options] fields.
const (
	DefaultPrefix     = "updraft/snapshots/"
	DefaultChunkBytes = 1 << 20
	DefaultRetain     = 3
	DefaultLeaseTTL   = 60 * time.Second
	// MaxChunkBytes keeps a chunk's put under etcd's default 1.5 MiB
	// request limit with room for the key and framing.
	MaxChunkBytes = 1400 << 10
	// RetainAll, as [Options.Retain], keeps every snapshot.
	RetainAll = -1
)

// Options configures a [Store]. The zero value is valid.
type Options struct {
	// Prefix is put before every key. "" = [DefaultPrefix].
	Prefix string
	// ChunkBytes is the most a chunk holds, at most [MaxChunkBytes].
	// 0 = [DefaultChunkBytes].
	ChunkBytes int
	// Retain is how many committed snapshots to keep; 0 = [DefaultRetain],
	// [RetainAll] keeps every one.
	Retain int
	// LeaseTTL is how long a dead writer's pending marker outlives it; its
	// chunks are swept after that. 0 = [DefaultLeaseTTL]; at least 5s.
	LeaseTTL time.Duration
	// Logger receives clean-up notices. nil discards them.
	Logger *slog.Logger
}

// Store is a [snapshot.Store] on etcd. It is safe for concurrent use.
type Store struct {
	cli    *clientv3.Client
	prefix string
	chunk  int
	retain int
	ttl    time.Duration
	log    *slog.Logger
	mu     sync.Mutex // serialises retention and sweeping
}

var _ snapshot.Store = (*Store)(nil)

// New returns a Store on cli. It validates opts, checks up front that the
// cluster answers (a read under the prefix, bounded by ctx), and sweeps
// chunks left by dead writers.
func New(ctx context.Context, cli *clientv3.Client, opts Options) (*Store, error) {
	if cli == nil {
		return nil, errors.New("etcdstore: New: client is nil")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.ChunkBytes < 0 || opts.ChunkBytes > MaxChunkBytes {
		return nil, fmt.Errorf("etcdstore: New: ChunkBytes %d out of range 0..%d (etcd refuses requests over 1.5 MiB)", opts.ChunkBytes, MaxChunkBytes)
	}
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.Retain < RetainAll {
		return nil, fmt.Errorf("etcdstore: New: Retain %d is invalid (use a positive count, 0 for %d, or RetainAll)", opts.Retain, DefaultRetain)
	}
	if opts.Retain == 0 {
		opts.Retain = DefaultRetain
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < 5*time.Second {
		return nil, fmt.Errorf("etcdstore: New: LeaseTTL %v is below 5s", opts.LeaseTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cli: cli, prefix: opts.Prefix, chunk: opts.ChunkBytes, retain: opts.Retain, ttl: opts.LeaseTTL, log: log}
	if _, err := cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return nil, fmt.Errorf("etcdstore: New: cluster does not answer: %w", err)
	}
	if err := s.Sweep(ctx); err != nil {
		return nil, fmt.Errorf("etcdstore: New: %w", err)
	}
	return s, nil
}

func (s *Store) manifestKey(id string) string { return s.prefix + "m/" + id }
func (s *Store) pendingKey(id string) string  { return s.prefix + "p/" + id }
func (s *Store) chunkPrefix(id string) string { return s.prefix + "c/" + id + "/" }
func (s *Store) chunkKey(id string, n int) string {
	return s.chunkPrefix(id) + fmt.Sprintf("%08d", n)
}

// meta is the manifest key's value.
type meta struct {
	Chunks int    `json:"chunks"`
	Bytes  int64  `json:"bytes"`
	CRC32C uint32 `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Create implements [snapshot.Store]. It claims id with a pending marker
// attached to a lease that the sink keeps alive until Close or Cancel.
func (s *Store) Create(ctx context.Context, id string) (snapshot.Sink, error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	lease, err := s.cli.Grant(ctx, int64(s.ttl/time.Second))
	if err != nil {
		return nil, fmt.Errorf("etcdstore: create %q: grant lease: %w", id, err)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.manifestKey(id)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.pendingKey(id)), "=", 0)).
		Then(clientv3.OpPut(s.pendingKey(id), "", clientv3.WithLease(lease.ID))).
		Commit()
	if err == nil && !resp.Succeeded {
		err = errors.New("already exists")
	}
	if err != nil {
		s.revoke(lease.ID)
		return nil, fmt.Errorf("etcdstore: create %q: %w", id, err)
	}
	kaCtx, stopKeepAlive := context.WithCancel(context.WithoutCancel(ctx))
	ka, err := s.cli.KeepAlive(kaCtx, lease.ID)
	if err != nil {
		stopKeepAlive()
		s.revoke(lease.ID)
		return nil, fmt.Errorf("etcdstore: create %q: keep lease alive: %w", id, err)
	}
	go func() { // drains keep-alive answers; ends when stopKeepAlive is called
		for range ka {
		}
	}()
	return &sink{ctx: ctx, s: s, id: id, lease: lease.ID, stopKeepAlive: stopKeepAlive,
		buf: make([]byte, 0, s.chunk), crc: crc32.New(castagnoli)}, nil
}

// revoke ends a lease on a fresh, bounded context, so clean-up runs even
// when the caller's context is already done.
func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, id); err != nil {
		s.log.Warn("etcdstore: revoke lease failed; it expires by itself", "lease", id, "err", err)
	}
}

// Open implements [snapshot.Store]. The reader fetches one chunk at a time,
// at the manifest's revision, and checks the length and checksum at the
// end (a mismatch matches [snapshot.ErrCorrupt]).
func (s *Store) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := snapshot.ValidID(id); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.manifestKey(id))
	if err != nil {
		return nil, fmt.Errorf("etcdstore: open %q: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("etcdstore: open %q: %w", id, snapshot.ErrNotFound)
	}
	var m meta
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil || m.Chunks < 0 || m.Bytes < 0 {
		return nil, fmt.Errorf("etcdstore: open %q: manifest key is malformed (%v): %w", id, err, snapshot.ErrCorrupt)
	}
	return &reader{ctx: ctx, s: s, id: id, meta: m, rev: resp.Kvs[0].ModRevision, crc: crc32.New(castagnoli)}, nil
}

// List implements [snapshot.Store].
func (s *Store) List(ctx context.Context) ([]string, error) {
	resp, err := s.cli.Get(ctx, s.prefix+"m/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcdstore: list: %w", err)
	}
	ids := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		ids = append(ids, strings.TrimPrefix(string(kv.Key), s.prefix+"m/"))
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements [snapshot.Store]: the manifest and every chunk go in
// one transaction.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := snapshot.ValidID(id); err != nil {
		return err
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.manifestKey(id)), ">", 0)).
		Then(clientv3.OpDelete(s.manifestKey(id)), clientv3.OpDelete(s.chunkPrefix(id), clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdstore: delete %q: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdstore: delete %q: %w", id, snapshot.ErrNotFound)
	}
	return nil
}

// Sweep deletes the chunks of snapshots that have neither a manifest nor a
// live pending marker: what writers that died (or were cancelled without
// reaching etcd) left behind.
func (s *Store) Sweep(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, err := s.cli.Get(ctx, s.prefix+"c/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("etcdstore: sweep: %w", err)
	}
	ids := map[string]bool{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), s.prefix+"c/")
		if id, _, ok := strings.Cut(rest, "/"); ok {
			ids[id] = true
		}
	}
	var errs *multierror.Error
	for id := range ids {
		// Only if neither key exists: checked and deleted in one step.
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(s.pendingKey(id)), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(s.manifestKey(id)), "=", 0)).
			Then(clientv3.OpDelete(s.chunkPrefix(id), clientv3.WithPrefix())).
			Commit()
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("etcdstore: sweep %q: %w", id, err))
			continue
		}
		if resp.Succeeded {
			s.log.Info("etcdstore: swept chunks of an abandoned snapshot", "id", id)
		}
	}
	return errs.ErrorOrNil()
}

// reap deletes the oldest snapshots beyond the retention count.
func (s *Store) reap(ctx context.Context) error {
	if s.retain == RetainAll {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.List(ctx)
	if err != nil {
		return err
	}
	var errs *multierror.Error
	for len(ids) > s.retain {
		s.log.Info("etcdstore: retention removes snapshot", "id", ids[0], "retain", s.retain)
		if err := s.Delete(ctx, ids[0]); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			errs = multierror.Append(errs, err)
		}
		ids = ids[1:]
	}
	return errs.ErrorOrNil()
}

// sink writes one snapshot; it is used by one goroutine at a time. ctx is
// the one given to Create (the Store contract binds the writes to it).
type sink struct {
	ctx           context.Context
	s             *Store
	id            string
	lease         clientv3.LeaseID
	stopKeepAlive context.CancelFunc
	buf           []byte
	crc           hash.Hash32
	n             int64
	chunks        int
	done          bool
}

func (w *sink) Write(p []byte) (int, error) {
	if w.done {
		return 0, snapshot.ErrSealed
	}
	written := 0
	for len(p) > 0 {
		take := min(cap(w.buf)-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		written += take
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *sink) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.s.cli.Put(w.ctx, w.s.chunkKey(w.id, w.chunks), string(w.buf)); err != nil {
		return fmt.Errorf("etcdstore: write %q chunk %d: %w", w.id, w.chunks, err)
	}
	w.crc.Write(w.buf)
	w.n += int64(len(w.buf))
	w.chunks++
	w.buf = w.buf[:0]
	return nil
}

// Close writes the last chunk and commits the manifest in a transaction
// that succeeds only while the pending marker (so the lease) is alive.
func (w *sink) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.stopKeepAlive()
	if err := w.commit(); err != nil {
		return multierror.Append(err, w.discard())
	}
	w.s.revoke(w.lease)
	if err := w.s.reap(w.ctx); err != nil {
		w.s.log.Warn("etcdstore: retention failed", "err", err)
	}
	if err := w.s.Sweep(w.ctx); err != nil {
		w.s.log.Warn("etcdstore: sweep failed", "err", err)
	}
	return nil
}

func (w *sink) commit() error {
	if err := w.flush(); err != nil {
		return err
	}
	mb, err := json.Marshal(meta{Chunks: w.chunks, Bytes: w.n, CRC32C: w.crc.Sum32()})
	if err != nil {
		return fmt.Errorf("etcdstore: commit %q: %w", w.id, err)
	}
	resp, err := w.s.cli.Txn(w.ctx).
		If(clientv3.Compare(clientv3.CreateRevision(w.s.pendingKey(w.id)), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(w.s.manifestKey(w.id)), "=", 0)).
		Then(clientv3.OpPut(w.s.manifestKey(w.id), string(mb)), clientv3.OpDelete(w.s.pendingKey(w.id))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdstore: commit %q: %w", w.id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdstore: commit %q: pending marker is gone (lease expired?); snapshot abandoned", w.id)
	}
	return nil
}

func (w *sink) Cancel() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.stopKeepAlive()
	return w.discard()
}

// discard deletes the chunks and the pending marker on a fresh, bounded
// context (w.ctx may be why we are here); Sweep catches what it misses.
func (w *sink) discard() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := w.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(w.s.manifestKey(w.id)), "=", 0)).
		Then(clientv3.OpDelete(w.s.chunkPrefix(w.id), clientv3.WithPrefix()), clientv3.OpDelete(w.s.pendingKey(w.id))).
		Commit()
	w.s.revoke(w.lease)
	if err != nil {
		return fmt.Errorf("etcdstore: discard %q (its chunks are swept later): %w", w.id, err)
	}
	return nil
}

// reader streams a committed snapshot chunk by chunk.
type reader struct {
	ctx  context.Context
	s    *Store
	id   string
	meta meta
	rev  int64
	next int
	cur  *bytes.Reader
	crc  hash.Hash32
	n    int64
	err  error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for r.cur == nil || r.cur.Len() == 0 {
		if r.next == r.meta.Chunks {
			r.err = r.finish()
			return 0, r.err
		}
		if err := r.fetch(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n, _ := r.cur.Read(p)
	return n, nil
}

func (r *reader) fetch() error {
	key := r.s.chunkKey(r.id, r.next)
	resp, err := r.s.cli.Get(r.ctx, key, clientv3.WithRev(r.rev))
	if err != nil {
		return fmt.Errorf("etcdstore: read %q chunk %d: %w", r.id, r.next, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("etcdstore: read %q chunk %d of %d: missing: %w", r.id, r.next, r.meta.Chunks, snapshot.ErrCorrupt)
	}
	v := resp.Kvs[0].Value
	r.crc.Write(v)
	r.n += int64(len(v))
	r.cur = bytes.NewReader(v)
	r.next++
	return nil
}

func (r *reader) finish() error {
	if r.n != r.meta.Bytes {
		return fmt.Errorf("etcdstore: read %q: %d bytes in chunks, manifest says %d: %w", r.id, r.n, r.meta.Bytes, snapshot.ErrCorrupt)
	}
	if got := r.crc.Sum32(); got != r.meta.CRC32C {
		return fmt.Errorf("etcdstore: read %q: checksum %08x, manifest says %08x: %w", r.id, got, r.meta.CRC32C, snapshot.ErrCorrupt)
	}
	return io.EOF
}

func (r *reader) Close() error { return nil }
