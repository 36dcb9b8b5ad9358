package migrate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// dedupLog is a Handler's durable record of the requests it has applied
// (HandlerOptions.DedupPath), so that deduplication survives a restart
// within the replay window: each applied invocation (with its answer) and
// each applied put-state is appended and fsynced before it is answered.
// Concurrent appenders share one write and one fsync (group commit).
//
// Record: uvarint length of the body, the body, CRC-32C of the body
// (4 bytes, big endian). Body: kind (1 byte), Unix nanoseconds (8 bytes,
// big endian), then function, id and data, each as uvarint length and
// bytes. A torn or corrupt tail (a crash mid-append) ends the log.
type dedupLog struct {
	path string

	mu      sync.Mutex
	cond    *sync.Cond
	f       *os.File // guarded by mu while not syncing; the syncer owns writes
	pending []byte   // records appended, not yet written; guarded by mu
	seq     uint64   // records appended; guarded by mu
	synced  uint64   // records durable; guarded by mu
	syncing bool     // one appender writes and fsyncs at a time; guarded by mu
	err     error    // sticky write or fsync error; guarded by mu
}

// Kinds of dedup records.
const (
	dedupResult = 1 // an invocation and its result
	dedupFnErr  = 2 // an invocation and its function error's text
	dedupPut    = 3 // a put-state applied (no data)
)

type dedupRecord struct {
	kind     byte
	at       time.Time
	function string
	id       string
	data     []byte
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (r *dedupRecord) appendTo(b []byte) []byte {
	var body []byte
	body = append(body, r.kind)
	body = binary.BigEndian.AppendUint64(body, uint64(r.at.UnixNano()))
	for _, f := range [][]byte{[]byte(r.function), []byte(r.id), r.data} {
		body = binary.AppendUvarint(body, uint64(len(f)))
		body = append(body, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(body, crcTable))
}

// decodeDedupRecords reads records from b until its end or the first torn
// or corrupt one; it returns the records and the length of the valid
// prefix.
func decodeDedupRecords(b []byte) ([]dedupRecord, int) {
	var out []dedupRecord
	off := 0
	for off < len(b) {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || n > uint64(len(b)) || off+k+int(n)+4 > len(b) {
			break
		}
		body := b[off+k : off+k+int(n)]
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[off+k+int(n):]) {
			break
		}
		rec, ok := decodeDedupBody(body)
		if !ok {
			break
		}
		out = append(out, rec)
		off += k + int(n) + 4
	}
	return out, off
}

func decodeDedupBody(body []byte) (dedupRecord, bool) {
	if len(body) < 9 {
		return dedupRecord{}, false
	}
	r := dedupRecord{kind: body[0], at: time.Unix(0, int64(binary.BigEndian.Uint64(body[1:9])))}
	rest := body[9:]
	var fields [3][]byte
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return dedupRecord{}, false
		}
		fields[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 || r.kind < dedupResult || r.kind > dedupPut {
		return dedupRecord{}, false
	}
	r.function, r.id, r.data = string(fields[0]), string(fields[1]), bytes.Clone(fields[2])
	return r, true
}

// openDedupLog reads the log at path (missing is empty), keeps the records
// not older than window before now, and rewrites the file atomically with
// only those, so the log holds one window's worth at each start.
func openDedupLog(path string, now time.Time, window time.Duration) (*dedupLog, []dedupRecord, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("migrate: dedup log %s: %w", path, err)
	}
	recs, _ := decodeDedupRecords(old)
	var keep []dedupRecord
	var buf []byte
	for _, r := range recs {
		if now.Sub(r.at) <= window {
			keep = append(keep, r)
			buf = r.appendTo(buf)
		}
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, buf); err != nil {
		return nil, nil, fmt.Errorf("migrate: dedup log %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, nil, fmt.Errorf("migrate: dedup log %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, nil, fmt.Errorf("migrate: dedup log %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: dedup log %s: %w", path, err)
	}
	l := &dedupLog{path: path, f: f}
	l.cond = sync.NewCond(&l.mu)
	return l, keep, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// append makes r durable: it returns once r is written and fsynced, with
// every record appended before it. Concurrent callers share the fsync.
func (l *dedupLog) append(r dedupRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = r.appendTo(l.pending)
	l.seq++
	mine := l.seq
	for l.synced < mine && l.err == nil {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.syncing = true
		buf, upto := l.pending, l.seq
		l.pending = nil
		l.mu.Unlock()
		_, err := l.f.Write(buf)
		if err == nil {
			err = l.f.Sync()
		}
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.err = fmt.Errorf("migrate: dedup log %s: %w", l.path, err)
		} else {
			l.synced = upto
		}
		l.cond.Broadcast()
	}
	if l.synced >= mine {
		return nil
	}
	return l.err
}

// Close closes the file.
func (l *dedupLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

var _ io.Closer = (*dedupLog)(nil)
