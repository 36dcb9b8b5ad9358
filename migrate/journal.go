package migrate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/updraft-dev/updraft/internal/durable"
)

// journal is one function's bounded on-disk invocation buffer. Every
// invocation routed away is appended before it is sent, and stays until a
// state checkpoint that covers it has come home (trim), so that a target's
// death loses nothing: the next target gets the checkpoint and the journal
// is replayed from there. Entries are numbered from 1 in append order.
//
// Records are written to segment files in dir; while they fit in
// memLimit, payloads are also held in memory. While an entry is being
// delivered, syncTo makes it durable (written and fsynced), and its caller
// is answered only after both: a new process finds every acknowledged
// invocation there (reopenJournal) after a crash. Concurrent deliveries
// share one fsync (group commit). A segment
// whose entries are all trimmed is deleted (or, the active one,
// truncated). journal is safe for concurrent use.
type journal struct {
	dir      string
	limit    int64 // bound on the bytes of untrimmed records
	segBytes int64 // a segment is closed once it grows past this
	memLimit int64 // payloads are also kept in memory up to this many bytes

	mu       sync.Mutex
	segs     []*segment // oldest first; the last is active
	entries  []jentry   // untrimmed, in seq order
	bytes    int64      // sum of untrimmed record sizes
	memBytes int64
	nextSeq  uint64
	nextSeg  int
	pending  []byte // encoded records of the active segment not yet written, from pendOff
	pendOff  int64
	dirty    map[*os.File]bool // segments written since the last fsync

	syncMu sync.Mutex // serialises fsyncs; taken before mu
	synced uint64     // entries up to this seq are durable; guarded by mu
}

// flushBytes is the size of a batch of records written at once.
const flushBytes = 64 << 10

type segment struct {
	f       *os.File
	path    string
	size    int64
	lastSeq uint64
}

type jentry struct {
	seq     uint64
	seg     *segment
	off     int64
	n       int64
	payload []byte // nil when only on disk
}

// recordHeader is seq (8 bytes) + payload length (4); a CRC-32C of header
// and payload (4) follows the payload.
const recordHeader = 12

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func openJournal(dir string, limit int64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("migrate: invocation buffer: %w", err)
	}
	j := &journal{dir: dir, limit: limit, segBytes: 4 << 20, memLimit: 4 << 20, nextSeq: 1, dirty: map[*os.File]bool{}}
	if err := j.rotate(); err != nil {
		return nil, err
	}
	return j, syncDir(dir)
}

// reopenJournal opens the journal a crashed process left in dir: every
// intact record with a seq above covered is an entry again (payloads in
// memory); a torn record at the end of a segment (the process died while
// writing it, before it was synced, so it was never delivered) ends that
// segment. New entries go to a new segment.
func reopenJournal(dir string, limit int64, covered uint64) (*journal, error) {
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		return nil, fmt.Errorf("migrate: invocation buffer: %w", err)
	}
	slices.Sort(names)
	j := &journal{dir: dir, limit: limit, segBytes: 4 << 20, memLimit: 1 << 62, nextSeq: covered + 1, dirty: map[*os.File]bool{}}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrate: invocation buffer: %w", err)
		}
		var n int
		if _, err := fmt.Sscanf(filepath.Base(name), "seg-%06d.log", &n); err == nil && n >= j.nextSeg {
			j.nextSeg = n + 1
		}
		for len(b) >= recordHeader+4 {
			size := recordHeader + int(binary.BigEndian.Uint32(b[8:])) + 4
			if size > len(b) {
				break
			}
			seq, payload, err := decodeRecord(b[:size])
			if err != nil {
				break
			}
			b = b[size:]
			if seq < j.nextSeq {
				continue // covered by the checkpoint, or a duplicate
			}
			if seq != j.nextSeq {
				return nil, fmt.Errorf("migrate: invocation buffer %s: entry %d follows %d", name, seq, j.nextSeq-1)
			}
			j.entries = append(j.entries, jentry{seq: seq, n: int64(size), payload: bytes.Clone(payload)})
			j.bytes += int64(size)
			j.nextSeq++
		}
	}
	j.synced = j.nextSeq - 1
	if err := j.rotate(); err != nil {
		return nil, err
	}
	// The entries' records live in the old segments, kept until close.
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("migrate: invocation buffer: %w", err)
		}
		j.segs = append([]*segment{{f: f, path: name, lastSeq: j.nextSeq - 1}}, j.segs...)
	}
	return j, nil
}

// syncTo makes every entry up to seq durable: written and fsynced.
// Callers that arrive while an fsync runs find their entry covered by it
// or wait for the next, which covers all of them.
func (j *journal) syncTo(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.synced >= seq {
		j.mu.Unlock()
		return nil
	}
	if err := j.flushLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	upTo := j.nextSeq - 1
	files := make([]*os.File, 0, len(j.dirty))
	for f := range j.dirty {
		files = append(files, f)
	}
	clear(j.dirty)
	j.mu.Unlock()
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("migrate: invocation buffer: fsync: %w", err)
		}
	}
	j.mu.Lock()
	j.synced = max(j.synced, upTo)
	j.mu.Unlock()
	return nil
}

func (j *journal) rotate() error {
	if err := j.flushLocked(); err != nil {
		return err
	}
	path := filepath.Join(j.dir, fmt.Sprintf("seg-%06d.log", j.nextSeg))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("migrate: invocation buffer: %w", err)
	}
	j.nextSeg++
	j.segs = append(j.segs, &segment{f: f, path: path})
	j.pendOff = 0
	return nil
}

// flush writes the records not yet on disk.
func (j *journal) flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushLocked()
}

func (j *journal) flushLocked() error {
	if len(j.pending) == 0 || j.segs == nil {
		return nil
	}
	seg := j.segs[len(j.segs)-1]
	if _, err := seg.f.WriteAt(j.pending, j.pendOff); err != nil {
		return fmt.Errorf("migrate: invocation buffer: %w", err)
	}
	j.dirty[seg.f] = true
	j.pendOff += int64(len(j.pending))
	j.pending = j.pending[:0]
	return nil
}

// append writes payload as the next entry and returns its seq. It fails
// with ErrBufferFull when the bound would be exceeded.
func (j *journal) append(payload []byte) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.segs == nil {
		return 0, errors.New("migrate: invocation buffer is closed")
	}
	n := int64(recordHeader + len(payload) + 4)
	if j.bytes+n > j.limit {
		return 0, fmt.Errorf("%w: %d bytes buffered, limit %d", ErrBufferFull, j.bytes, j.limit)
	}
	seg := j.segs[len(j.segs)-1]
	seq := j.nextSeq
	e := jentry{seq: seq, seg: seg, off: seg.size, n: n}
	if j.memBytes+int64(len(payload)) <= j.memLimit {
		e.payload = bytes.Clone(payload)
		if e.payload == nil {
			e.payload = []byte{}
		}
		j.memBytes += int64(len(payload))
	}
	j.pending = appendRecord(j.pending, seq, payload)
	if len(j.pending) >= flushBytes || e.payload == nil {
		if err := j.flushLocked(); err != nil {
			return 0, err
		}
	}
	seg.size += n
	seg.lastSeq = seq
	j.entries = append(j.entries, e)
	j.bytes += n
	j.nextSeq++
	if seg.size >= j.segBytes {
		if err := j.rotate(); err != nil {
			return seq, err
		}
	}
	return seq, nil
}

// last returns the seq of the newest entry (0 when none was appended).
func (j *journal) last() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextSeq - 1
}

// get returns the payload of entry seq, which must not be trimmed.
func (j *journal) get(seq uint64) ([]byte, error) {
	j.mu.Lock()
	if len(j.entries) == 0 || seq < j.entries[0].seq || seq >= j.nextSeq {
		j.mu.Unlock()
		return nil, fmt.Errorf("migrate: invocation buffer: entry %d is not buffered", seq)
	}
	e := j.entries[seq-j.entries[0].seq]
	j.mu.Unlock()
	if e.payload != nil {
		return e.payload, nil
	}
	buf := make([]byte, e.n)
	if _, err := e.seg.f.ReadAt(buf, e.off); err != nil {
		return nil, fmt.Errorf("migrate: invocation buffer: read entry %d: %w", seq, err)
	}
	got, payload, err := decodeRecord(buf)
	if err != nil {
		return nil, fmt.Errorf("migrate: invocation buffer %s: entry %d: %w", e.seg.path, seq, err)
	}
	if got != seq {
		return nil, fmt.Errorf("migrate: invocation buffer %s: entry %d holds seq %d", e.seg.path, seq, got)
	}
	return payload, nil
}

// trim drops the entries up to and including seq, and the segments left
// without entries.
func (j *journal) trim(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	k := 0
	for k < len(j.entries) && j.entries[k].seq <= seq {
		j.bytes -= j.entries[k].n
		j.memBytes -= int64(len(j.entries[k].payload))
		k++
	}
	j.entries = j.entries[k:]
	if len(j.entries) == 0 {
		j.entries = nil
	}
	if j.segs == nil {
		return nil // closed
	}
	var errs []error
	for len(j.segs) > 1 && j.segs[0].lastSeq <= seq {
		s := j.segs[0]
		delete(j.dirty, s.f)
		errs = append(errs, s.f.Close(), os.Remove(s.path))
		j.segs = j.segs[1:]
	}
	if active := j.segs[len(j.segs)-1]; len(j.entries) == 0 && active.size >= 1<<20 {
		errs = append(errs, active.f.Truncate(0))
		active.size, j.pendOff, j.pending = 0, 0, j.pending[:0]
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("migrate: invocation buffer: %w", err)
	}
	return nil
}

// buffered returns the bytes and entries not yet trimmed.
func (j *journal) buffered() (int64, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bytes, len(j.entries)
}

// closeFiles closes the journal's files and keeps them, for a process that
// reattaches.
func (j *journal) closeFiles() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, s := range j.segs {
		errs = append(errs, s.f.Close())
	}
	j.segs = nil
	return errors.Join(errs...)
}

// close closes and removes the journal's files.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, s := range j.segs {
		errs = append(errs, s.f.Close())
	}
	j.segs = nil
	errs = append(errs, os.RemoveAll(j.dir))
	return errors.Join(errs...)
}

// appendRecord appends the record of (seq, payload) to b.
func appendRecord(b []byte, seq uint64, payload []byte) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// decodeRecord parses one record that fills b exactly.
func decodeRecord(b []byte) (uint64, []byte, error) {
	if len(b) < recordHeader+4 {
		return 0, nil, fmt.Errorf("record of %d bytes is shorter than the %d-byte minimum", len(b), recordHeader+4)
	}
	n := binary.BigEndian.Uint32(b[8:])
	if int64(n) != int64(len(b)-recordHeader-4) {
		return 0, nil, fmt.Errorf("record says %d payload bytes, holds %d", n, len(b)-recordHeader-4)
	}
	body := b[:recordHeader+int(n)]
	if want, got := binary.BigEndian.Uint32(b[recordHeader+int(n):]), crc32.Checksum(body, castagnoli); want != got {
		return 0, nil, fmt.Errorf("record checksum %08x does not match %08x: corrupt", got, want)
	}
	return binary.BigEndian.Uint64(b), b[recordHeader:len(body):len(body)], nil
}

// syncDir and writeFileDurably are internal/durable's, with this package's
// prefix on errors.
func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func writeFileDurably(path string, b []byte) error { return durable.WriteFile(path, b) }
