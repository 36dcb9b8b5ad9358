package snapshot

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// DeltaView is an optional interface of a [View]: it writes only what
// changed between base, an earlier view of the same container that is
// still open (not Closed), and itself, at a cost in proportion to the
// change rather than to the state. The self-update hand-over sends a bulk
// copy (WriteTo of an early view) while the old process serves, then,
// during a pause, the delta from that view to a final one.
// [ShardedMapView] implements it.
type DeltaView interface {
	WriteDeltaTo(w io.Writer, base View) (int64, error)
}

// DeltaSource is an optional interface of a [Source]: it applies a delta
// written by a [DeltaView] to its current contents (which should be what
// the delta's base view held, e.g. restored from its bulk copy).
// [ShardedMap] implements it.
type DeltaSource interface {
	ApplyDelta(ctx context.Context, r io.Reader) error
}

// ErrDeltaBase: WriteDeltaTo was given a base it cannot write a delta
// from: a view of another container, a later view, a view already closed,
// or one taken before the container was restored. Checked with errors.Is;
// the caller sends the whole view instead.
var ErrDeltaBase = errors.New("snapshot: unusable delta base")

// The delta format, shared by the containers:
//
//	"UDLT" | version 1 | records | end
//	record: 'S' | klen uvarint | key | vlen uvarint | value   (set)
//	        'D' | klen uvarint | key                           (delete)
//	end:    'E' | records uvarint | CRC-32C (4 bytes, little endian) of
//	        every byte before the checksum, from the magic on
//
// Keys and values are encoded with the container's codecs. A key appears
// at most once. ApplyDelta decodes and verifies everything before it
// changes anything.
const deltaMagic = "UDLT\x01"

var deltaCRC = crc32.MakeTable(crc32.Castagnoli)

const (
	deltaSet    = 'S'
	deltaDelete = 'D'
	deltaEnd    = 'E'
)

// deltaWriter writes the delta format; every byte goes through crc.
type deltaWriter[K comparable, V any] struct {
	w       io.Writer
	codec   entryCodec[K, V]
	buf     []byte
	scratch []byte
	crc     uint32
	n       int64
	records uint64
	err     error
}

func newDeltaWriter[K comparable, V any](w io.Writer, c entryCodec[K, V]) *deltaWriter[K, V] {
	d := &deltaWriter[K, V]{w: w, codec: c, buf: make([]byte, 0, 2*copyFlushAt)}
	d.buf = append(d.buf, deltaMagic...)
	return d
}

func (d *deltaWriter[K, V]) flush() {
	if d.err != nil || len(d.buf) == 0 {
		return
	}
	d.crc = crc32.Update(d.crc, deltaCRC, d.buf)
	n, err := d.w.Write(d.buf)
	d.n += int64(n)
	if err != nil {
		d.err = fmt.Errorf("snapshot: write delta: %w", err)
	}
	d.buf = d.buf[:0]
}

func (d *deltaWriter[K, V]) field(b []byte) {
	d.buf = binary.AppendUvarint(d.buf, uint64(len(b)))
	d.buf = append(d.buf, b...)
}

func (d *deltaWriter[K, V]) key(op byte, k K) bool {
	if d.err != nil {
		return false
	}
	var err error
	if d.scratch, err = d.codec.keys.Append(d.scratch[:0], k); err != nil {
		d.err = fmt.Errorf("snapshot: write delta: encode key: %w", err)
		return false
	}
	d.buf = append(d.buf, op)
	d.field(d.scratch)
	d.records++
	return true
}

func (d *deltaWriter[K, V]) set(k K, v V) {
	if !d.key(deltaSet, k) {
		return
	}
	if d.codec.rawValues {
		d.field(any(v).([]byte))
	} else {
		var err error
		if d.scratch, err = d.codec.values.Append(d.scratch[:0], v); err != nil {
			d.err = fmt.Errorf("snapshot: write delta: encode value of key %v: %w", k, err)
			return
		}
		d.field(d.scratch)
	}
	if len(d.buf) >= copyFlushAt {
		d.flush()
	}
}

func (d *deltaWriter[K, V]) del(k K) {
	if d.key(deltaDelete, k) && len(d.buf) >= copyFlushAt {
		d.flush()
	}
}

// close writes the end record and returns the bytes written.
func (d *deltaWriter[K, V]) close() (int64, error) {
	d.buf = append(d.buf, deltaEnd)
	d.buf = binary.AppendUvarint(d.buf, d.records)
	d.flush()
	if d.err != nil {
		return d.n, d.err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], d.crc)
	n, err := d.w.Write(sum[:])
	d.n += int64(n)
	if err != nil {
		return d.n, fmt.Errorf("snapshot: write delta: %w", err)
	}
	return d.n, nil
}

// deltaOp is one decoded record: a set when del is false.
type deltaOp[K comparable, V any] struct {
	key K
	val V
	del bool
}

// readDelta decodes and verifies a whole delta. It returns its records
// only if the format, every field, the record count and the checksum are
// right and nothing follows; otherwise an error naming what is wrong.
func readDelta[K comparable, V any](ctx context.Context, r io.Reader, c entryCodec[K, V]) ([]deltaOp[K, V], error) {
	br := bufio.NewReaderSize(r, readBufferBytes)
	// Every byte decoded goes through read, so the checksum covers
	// exactly what was decoded.
	var crc uint32
	read := func(p []byte) error {
		if _, err := io.ReadFull(br, p); err != nil {
			return eofIsUnexpected(err)
		}
		crc = crc32.Update(crc, deltaCRC, p)
		return nil
	}
	var one [1]byte
	readByte := func() (byte, error) {
		err := read(one[:])
		return one[0], err
	}
	uvarint := func() (uint64, error) {
		var x uint64
		for shift := uint(0); ; shift += 7 {
			b, err := readByte()
			if err != nil {
				return 0, err
			}
			if shift == 63 && b > 1 {
				return 0, errors.New("uvarint overflows 64 bits")
			}
			x |= uint64(b&0x7f) << shift
			if b < 0x80 {
				return x, nil
			}
		}
	}
	var fieldBuf []byte
	field := func() ([]byte, error) {
		n, err := uvarint()
		if err != nil {
			return nil, err
		}
		if n > maxMapField {
			return nil, fmt.Errorf("length %d exceeds %d", n, maxMapField)
		}
		if uint64(cap(fieldBuf)) < n {
			fieldBuf = make([]byte, 0, min(n, 1<<20)) // a claim until the bytes are there
		}
		fieldBuf = fieldBuf[:0]
		for uint64(len(fieldBuf)) < n {
			take := min(n-uint64(len(fieldBuf)), 64<<10)
			start := len(fieldBuf)
			fieldBuf = append(fieldBuf, make([]byte, take)...)
			if err := read(fieldBuf[start:]); err != nil {
				return nil, err
			}
		}
		return fieldBuf, nil
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("snapshot: apply delta: %s: %w", what, err)
	}
	magic := make([]byte, len(deltaMagic))
	if err := read(magic); err != nil {
		return nil, fail("header", err)
	}
	if string(magic) != deltaMagic {
		if string(magic[:4]) == deltaMagic[:4] {
			return nil, fail("header", fmt.Errorf("%w: delta version %d, want %d", ErrFormatVersion, magic[4], deltaMagic[4]))
		}
		return nil, fail("header", fmt.Errorf("%w: %q is not %q", ErrCorrupt, magic, deltaMagic))
	}
	var ops []deltaOp[K, V]
	seen := map[K]struct{}{}
	for i := uint64(0); ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fail("", err)
			}
		}
		what := fmt.Sprintf("record %d", i)
		op, err := readByte()
		if err != nil {
			return nil, fail(what, err)
		}
		if op == deltaEnd {
			n, err := uvarint()
			if err != nil {
				return nil, fail("end: record count", err)
			}
			if n != i {
				return nil, fail("end", fmt.Errorf("%w: says %d records, read %d", ErrCorrupt, n, i))
			}
			want := crc
			var s [4]byte
			if err := read(s[:]); err != nil {
				return nil, fail("end: checksum", err)
			}
			if got := binary.LittleEndian.Uint32(s[:]); got != want {
				return nil, fail("end", fmt.Errorf("%w: checksum %08x, computed %08x", ErrCorrupt, got, want))
			}
			if _, err := br.ReadByte(); err != io.EOF {
				if err == nil {
					err = fmt.Errorf("%w: data after the end record", ErrCorrupt)
				}
				return nil, fail("end", err)
			}
			return ops, nil
		}
		if op != deltaSet && op != deltaDelete {
			return nil, fail(what, fmt.Errorf("%w: unknown record type %q", ErrCorrupt, op))
		}
		kb, err := field()
		if err != nil {
			return nil, fail(what+": key", err)
		}
		key, err := c.keys.Decode(kb)
		if err != nil {
			return nil, fail(what+": key", fmt.Errorf("%w: %w", ErrCorrupt, err))
		}
		if _, dup := seen[key]; dup {
			return nil, fail(what, fmt.Errorf("%w: key %v appears twice", ErrCorrupt, key))
		}
		seen[key] = struct{}{}
		d := deltaOp[K, V]{key: key, del: op == deltaDelete}
		if !d.del {
			vb, err := field()
			if err != nil {
				return nil, fail(what+": value", err)
			}
			if d.val, err = c.values.Decode(vb); err != nil {
				return nil, fail(fmt.Sprintf("%s: value of key %v", what, key), fmt.Errorf("%w: %w", ErrCorrupt, err))
			}
		}
		ops = append(ops, d)
	}
}
