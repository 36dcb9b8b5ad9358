package snapshot

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/internal/durable"
)

// DefaultRetain is how many committed snapshots a [FileStore] keeps when
// [FileStoreOptions.Retain] is zero.
const DefaultRetain = 3

// RetainAll, as [FileStoreOptions.Retain], keeps every snapshot.
const RetainAll = -1

const (
	fileSuffix  = ".snap"
	tempMarker  = ".tmp-"
	footerMagic = "UPDFOOT1"
	footerSize  = 4 + 8 + len(footerMagic) // crc32c, length, magic
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FileStoreOptions configures a [FileStore]. The zero value is valid.
type FileStoreOptions struct {
	// Retain is how many committed snapshots to keep; older ones are
	// deleted after each commit. 0 means [DefaultRetain]; [RetainAll] keeps
	// every snapshot.
	Retain int
	// Logger receives clean-up notices. nil discards them.
	Logger *slog.Logger
}

// FileStore is the default [Store]: one file per snapshot in a directory.
//
// A snapshot is written to a temporary file, followed by a footer holding its
// length and CRC-32C checksum, fsynced, renamed to "<id>.snap" and the
// directory fsynced, so a crash leaves either the whole snapshot or none.
// Open verifies the checksum as the bytes are read and reports a mismatch
// (matching [ErrCorrupt]) instead of io.EOF; an [Engine], which checks every
// byte of a snapshot itself, turns that checksum off (the footer's length
// is still checked) rather than run it over the same bytes again. Temporary
// files left by a crash are ignored by List and removed by [NewFileStore].
// It is safe for concurrent use.
//
// Retention keeps the file of one retired snapshot and writes the next
// snapshot over it (cheaper than deleting it and allocating another), unless
// a reader of this store has it open. Another process reading a snapshot's
// file directly, as it is retired, may therefore see it overwritten:
// copy snapshots out through Open, or with RetainAll.
type FileStore struct {
	dir    string
	retain int
	log    *slog.Logger
	mu     sync.Mutex // serialises commits and retention
	// spare is a snapshot file retention retired, kept to be overwritten
	// by the next Create instead of deleted (see reap); "" when none.
	// Guarded by mu.
	spare string
	// readers counts the open readers of each snapshot file: one being
	// read is deleted when retired, never recycled. Guarded by mu.
	readers map[string]int
}

var _ Store = (*FileStore)(nil)

// NewFileStore opens dir as a snapshot store. It checks up front that dir is
// a directory this process can write and fsync, and removes temporary files
// left by an earlier crash.
func NewFileStore(dir string, opts FileStoreOptions) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("snapshot: NewFileStore: dir is empty")
	}
	if opts.Retain < RetainAll {
		return nil, fmt.Errorf("snapshot: NewFileStore: Retain %d is invalid (use a positive count, 0 for %d, or RetainAll)", opts.Retain, DefaultRetain)
	}
	retain := opts.Retain
	if retain == 0 {
		retain = DefaultRetain
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: NewFileStore: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("snapshot: NewFileStore: %s is not a directory", dir)
	}
	s := &FileStore{dir: dir, retain: retain, log: loggerOrDiscard(opts.Logger)}
	if err := s.checkWritable(); err != nil {
		return nil, err
	}
	if err := s.removeLeftovers(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) checkWritable() error {
	f, err := os.CreateTemp(s.dir, "."+"writecheck"+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("snapshot: NewFileStore: %s is not writable: %w", s.dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("updraft"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("snapshot: NewFileStore: %s is not writable: %w", s.dir, err)
	}
	return nil
}

func (s *FileStore) removeLeftovers() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("snapshot: NewFileStore: %w", err)
	}
	var errs *multierror.Error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), tempMarker) {
			s.log.Info("snapshot: removing leftover temporary file", "file", e.Name())
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = multierror.Append(errs, fmt.Errorf("snapshot: NewFileStore: remove leftover: %w", err))
			}
		}
	}
	return errs.ErrorOrNil()
}

func (s *FileStore) path(id string) string { return filepath.Join(s.dir, id+fileSuffix) }

// Create implements [Store].
func (s *FileStore) Create(ctx context.Context, id string) (Sink, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: filestore create %q: %w", id, err)
	}
	if err := ValidID(id); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.path(id)); err == nil {
		return nil, fmt.Errorf("snapshot: filestore create %q: already exists", id)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, "."+id+tempMarker+hex.EncodeToString(rnd[:]))
	f, recycled := s.reuseSpare(tmp)
	if f == nil {
		var err error
		if f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return nil, fmt.Errorf("snapshot: filestore create %q: %w", id, err)
		}
	}
	w := &fileSink{ctx: ctx, store: s, id: id, f: f, crc: crc32.New(castagnoli), recycled: recycled}
	// Small buffer: frames larger than it go straight to the file.
	w.buf = bufio.NewWriterSize(f, 64<<10)
	return w, nil
}

// Open implements [Store]. The returned reader verifies the file's footer
// before the first byte and its checksum at the end; a mismatch is returned
// in place of io.EOF and matches [ErrCorrupt].
func (s *FileStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: filestore open %q: %w", id, err)
	}
	if err := ValidID(id); err != nil {
		return nil, err
	}
	path := s.path(id)
	// Counted before the file is opened, so that retention, which may
	// run in between, deletes it rather than hand it to a writer.
	release := s.countReader(path)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		release()
		return nil, fmt.Errorf("snapshot: filestore open %q: %w", id, ErrNotFound)
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("snapshot: filestore open %q: %w", id, err)
	}
	r, err := newFooterReader(f, path)
	if err != nil {
		f.Close()
		release()
		return nil, err
	}
	r.release = release
	return r, nil
}

// countReader counts one more reader of the file at path and returns the
// function that counts it out.
func (s *FileStore) countReader(path string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers == nil {
		s.readers = map[string]int{}
	}
	s.readers[path]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.readers[path]--; s.readers[path] == 0 {
			delete(s.readers, path)
		}
	}
}

// List implements [Store]. Temporary files are ignored.
func (s *FileStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: filestore list: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: filestore list: %w", err)
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, fileSuffix)
		if !ok || !e.Type().IsRegular() || ValidID(id) != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete implements [Store].
func (s *FileStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: filestore delete %q: %w", id, err)
	}
	if err := ValidID(id); err != nil {
		return err
	}
	err := os.Remove(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: filestore delete %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("snapshot: filestore delete %q: %w", id, err)
	}
	return syncDir(s.dir)
}

// reap retires the oldest snapshots beyond the retention count. s.mu is
// held. The first one retired becomes the spare, which the next Create
// overwrites instead of allocating a new file; the others are deleted.
//
// Recycling the file, as databases recycle their log files, takes the
// deletion off the commit path: on ext4 unlinking a snapshot of a few
// megabytes, which frees its extents, costs about as much as fsyncing it
// (2 ms for 7 MB here), and overwriting blocks that are already allocated
// spares the next commit's fsync the allocation.
func (s *FileStore) reap(ctx context.Context) error {
	if s.retain == RetainAll {
		return nil
	}
	ids, err := s.List(ctx)
	if err != nil {
		return err
	}
	var errs *multierror.Error
	for len(ids) > s.retain {
		s.log.Info("snapshot: retention removes snapshot", "id", ids[0], "retain", s.retain)
		// No directory fsync: a removal or rename a crash undoes is
		// redone by the next commit's retention, and the commit has just
		// synced the directory for what matters (the new snapshot).
		if err := s.retire(s.path(ids[0])); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("snapshot: filestore retention: %w", err))
		}
		ids = ids[1:]
	}
	return errs.ErrorOrNil()
}

// retire takes the committed snapshot file at path out of the store: it
// becomes the spare if there is none and nobody is reading it, else it is
// deleted (an open reader keeps reading the deleted file). The spare's
// name is a temporary one, so List ignores it and NewFileStore removes it
// after a crash. s.mu is held.
func (s *FileStore) retire(path string) error {
	if s.spare == "" && s.readers[path] == 0 {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		spare := filepath.Join(s.dir, ".spare"+tempMarker+hex.EncodeToString(rnd[:]))
		if err := os.Rename(path, spare); err == nil {
			s.spare = spare
			return nil
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// reuseSpare renames the spare, if there is one, to tmp and opens it for
// writing from its start without truncating it (the sink truncates it to
// what it wrote at commit). It returns nil if there is no spare or it
// cannot be reused; a spare that cannot be reused is deleted.
func (s *FileStore) reuseSpare(tmp string) (f *os.File, ok bool) {
	s.mu.Lock()
	spare := s.spare
	s.spare = ""
	s.mu.Unlock()
	if spare == "" {
		return nil, false
	}
	if err := os.Rename(spare, tmp); err != nil {
		os.Remove(spare)
		return nil, false
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		os.Remove(tmp)
		return nil, false
	}
	return f, true
}

func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// fileSink writes one snapshot to a temporary file. It is used by one
// goroutine at a time. ctx is the one given to Create (the Store contract
// binds the sink's writes to it).
type fileSink struct {
	ctx   context.Context
	store *FileStore
	id    string
	f     *os.File
	buf   *bufio.Writer
	crc   hash.Hash32
	n     int64
	done  bool
	// kicked is how far writeback has been started (startWriteback).
	kicked int64
	// recycled is set when f is a retired snapshot being overwritten: it
	// is truncated to the bytes written at commit.
	recycled bool
}

// writebackEvery is how many bytes a sink writes between asking the kernel
// to start writing them out, so the disk works while chunks are encoded
// and the commit's fsync has little left to wait for.
const writebackEvery = 1 << 20

func (w *fileSink) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrSealed
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("snapshot: filestore write %q: %w", w.id, err)
	}
	n, err := w.buf.Write(p)
	w.crc.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("snapshot: filestore write %q: %w", w.id, err)
	}
	if inFile := w.n - int64(w.buf.Buffered()); inFile-w.kicked >= writebackEvery {
		startWriteback(w.f, w.kicked, inFile-w.kicked)
		w.kicked = inFile
	}
	return n, nil
}

// Close writes the footer, fsyncs, renames the file into place, fsyncs the
// directory and applies retention.
func (w *fileSink) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	tmp := w.f.Name()
	if err := w.commit(tmp); err != nil {
		w.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("snapshot: filestore commit %q: %w", w.id, err)
	}
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	if err := w.store.reap(w.ctx); err != nil {
		// The snapshot is committed; a failed clean-up does not undo it.
		w.store.log.Warn("snapshot: retention failed", "err", err)
	}
	return nil
}

func (w *fileSink) commit(tmp string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	var footer [footerSize]byte
	binary.LittleEndian.PutUint32(footer[0:], w.crc.Sum32())
	binary.LittleEndian.PutUint64(footer[4:], uint64(w.n))
	copy(footer[12:], footerMagic)
	if _, err := w.buf.Write(footer[:]); err != nil {
		return err
	}
	if err := w.buf.Flush(); err != nil {
		return err
	}
	if w.recycled {
		if err := w.f.Truncate(w.n + int64(footerSize)); err != nil {
			return err
		}
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, w.store.path(w.id)); err != nil {
		return err
	}
	return syncDir(w.store.dir)
}

func (w *fileSink) Cancel() error {
	if w.done {
		return nil
	}
	w.done = true
	cerr := w.f.Close()
	rerr := os.Remove(w.f.Name())
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("snapshot: filestore cancel %q: %w", w.id, err)
	}
	return nil
}

// footerReader returns a file's content without its footer and checks the
// footer's checksum when the content has been read.
type footerReader struct {
	f       *os.File
	release func() // counts the reader out of its store; nil once called
	name    string
	r       io.Reader   // the content, limited to its length
	crc     hash.Hash32 // nil once skipContentChecksum was called
	want    uint32
	err     error
}

func newFooterReader(f *os.File, name string) (*footerReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snapshot: filestore open %s: %w", name, err)
	}
	if st.Size() < int64(footerSize) {
		return nil, fmt.Errorf("snapshot: filestore %s: %d bytes is shorter than the %d-byte footer: %w", name, st.Size(), footerSize, errors.Join(ErrTruncated, ErrCorrupt))
	}
	var footer [footerSize]byte
	if _, err := f.ReadAt(footer[:], st.Size()-int64(footerSize)); err != nil {
		return nil, fmt.Errorf("snapshot: filestore open %s: footer: %w", name, err)
	}
	if string(footer[12:]) != footerMagic {
		return nil, fmt.Errorf("snapshot: filestore %s: footer magic is missing (truncated or overwritten file): %w", name, ErrCorrupt)
	}
	length := binary.LittleEndian.Uint64(footer[4:])
	if length != uint64(st.Size()-int64(footerSize)) {
		return nil, fmt.Errorf("snapshot: filestore %s: footer says %d bytes of content, file holds %d: %w", name, length, st.Size()-int64(footerSize), ErrCorrupt)
	}
	return &footerReader{
		f: f, name: name,
		// Unbuffered: the decoder buffers small reads, and a frame's
		// payload is read straight from the file into its buffer.
		r:    io.LimitReader(f, int64(length)),
		crc:  crc32.New(castagnoli),
		want: binary.LittleEndian.Uint32(footer[0:]),
	}, nil
}

// skipContentChecksum implements [selfChecking]: the footer's length and
// magic are still checked, its checksum is not.
func (r *footerReader) skipContentChecksum() { r.crc = nil }

func (r *footerReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	if r.crc != nil {
		r.crc.Write(p[:n])
	}
	if err == io.EOF && r.crc != nil {
		if got := r.crc.Sum32(); got != r.want {
			err = fmt.Errorf("snapshot: filestore %s: file checksum %08x, footer says %08x: %w", r.name, got, r.want, ErrCorrupt)
		}
	}
	if err != nil {
		r.err = err // sticky: a mismatch is never followed by a clean io.EOF
	}
	return n, err
}

func (r *footerReader) Close() error {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return r.f.Close()
}
