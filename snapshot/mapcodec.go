package snapshot

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"reflect"
)

// mapMagic starts a map's serialised form, shared by [Map] and
// [ShardedMap] so either restores what the other wrote:
//
//	"UMAP" | version 1 | count uvarint | count × (klen uvarint | key | vlen uvarint | value)
const mapMagic = "UMAP\x01"

// readBufferBytes is the map reader's buffer; fields up to this size are
// decoded in place.
const readBufferBytes = 64 << 10

// maxMapField bounds an encoded key or value.
const maxMapField = 1 << 30

// entryCodec writes and reads the map format with a map's codecs.
type entryCodec[K comparable, V any] struct {
	keys      Codec[K]
	values    Codec[V]
	rawValues bool // V is []byte with the default codec: copied once
}

func newEntryCodec[K comparable, V any](constructor string, opts MapOptions[K, V]) (entryCodec[K, V], error) {
	c := entryCodec[K, V]{keys: opts.Keys, values: opts.Values}
	if (c.keys.Append == nil) != (c.keys.Decode == nil) {
		return c, fmt.Errorf("snapshot: %s: Keys codec needs both Append and Decode", constructor)
	}
	if (c.values.Append == nil) != (c.values.Decode == nil) {
		return c, fmt.Errorf("snapshot: %s: Values codec needs both Append and Decode", constructor)
	}
	if !c.keys.valid() {
		c.keys = defaultCodec[K]()
	}
	if !c.values.valid() {
		c.values = defaultCodec[V]()
		c.rawValues = reflect.TypeFor[V]() == reflect.TypeFor[[]byte]()
	}
	return c, nil
}

// write writes count entries produced by each. A writer that lends its
// buffer (a snapshot's [chunkWriter]) has the entries encoded straight into
// its chunks; any other gets them in writes of about 64 KiB.
func (c entryCodec[K, V]) write(w io.Writer, count int, each func(yield func(K, V) bool)) (int64, error) {
	out, direct := w.(bufferLender)
	if !direct {
		out = &copyingLender{w: w, buf: make([]byte, 0, 2*copyFlushAt)}
	}
	buf := out.lend()
	base := len(buf) // bytes in buf before ours
	buf = append(buf, mapMagic...)
	buf = binary.AppendUvarint(buf, uint64(count))
	var written int64
	var err error
	var scratch []byte
	flush := func() bool {
		written += int64(len(buf) - base)
		buf, err = out.giveBack(buf)
		base = len(buf)
		return err == nil
	}
	each(func(key K, val V) bool {
		if scratch, err = c.keys.Append(scratch[:0], key); err != nil {
			err = fmt.Errorf("snapshot: map: encode key: %w", err)
			return false
		}
		buf = binary.AppendUvarint(buf, uint64(len(scratch)))
		buf = append(buf, scratch...)
		if c.rawValues {
			raw := any(val).([]byte)
			buf = binary.AppendUvarint(buf, uint64(len(raw)))
			buf = append(buf, raw...)
		} else {
			if scratch, err = c.values.Append(scratch[:0], val); err != nil {
				err = fmt.Errorf("snapshot: map: encode value of key %v: %w", key, err)
				return false
			}
			buf = binary.AppendUvarint(buf, uint64(len(scratch)))
			buf = append(buf, scratch...)
		}
		if len(buf) >= out.flushAt() {
			return flush()
		}
		return true
	})
	if err != nil {
		return written, err
	}
	flush()
	return written, err
}

// bufferLender is a writer that lends its buffer to be appended to
// directly, saving a copy of every byte.
type bufferLender interface {
	// lend returns the buffer; the caller appends to it.
	lend() []byte
	// giveBack takes the appended buffer back, writes what it can, and
	// returns the buffer to append to next.
	giveBack(b []byte) ([]byte, error)
	// flushAt is the length from which the caller should give the buffer
	// back.
	flushAt() int
}

const copyFlushAt = 64 << 10

// copyingLender lends a buffer of its own in front of any writer.
type copyingLender struct {
	w   io.Writer
	buf []byte
}

func (l *copyingLender) lend() []byte { return l.buf[:0] }
func (l *copyingLender) flushAt() int { return copyFlushAt }

func (l *copyingLender) giveBack(b []byte) ([]byte, error) {
	l.buf = b
	_, err := l.w.Write(b)
	return b[:0], err
}

// read decodes a stream and hands each entry to add, which reports whether
// the key was new; a duplicate key is an error. sized, when not nil, is
// first told how many entries the stream says it holds (an unverified
// claim: size hints from it must be capped).
//
// When r is a restore's [stageReader], fields are read straight from the
// verified chunks, which the map then owns: with the default []byte codec
// a value is a slice of its chunk instead of a copy (values are immutable
// in a Map, so sharing their memory is safe; a value's capacity ends with
// it, so an append copies).
func (c entryCodec[K, V]) read(ctx context.Context, r io.Reader, sized func(uint64), add func(K, V) bool) error {
	var src fieldSource
	if sr, ok := r.(*stageReader); ok {
		src = &chunkFields{next: sr.nextChunk}
	} else {
		src = &bufferedFields{br: bufio.NewReaderSize(r, readBufferBytes)}
	}
	magic, _, err := src.field(len(mapMagic))
	if err != nil {
		return fmt.Errorf("snapshot: map restore: header: %w", eofIsUnexpected(err))
	}
	if string(magic) != mapMagic {
		return fmt.Errorf("snapshot: map restore: header %q is not %q", magic, mapMagic)
	}
	count, err := src.uvarint()
	if err != nil {
		return fmt.Errorf("snapshot: map restore: entry count: %w", eofIsUnexpected(err))
	}
	if sized != nil {
		sized(count)
	}
	field := func(i uint64, what string) ([]byte, bool, error) {
		n, err := src.uvarint()
		if err != nil {
			return nil, false, fmt.Errorf("snapshot: map restore: entry %d of %d: %s length: %w", i, count, what, eofIsUnexpected(err))
		}
		if n > maxMapField {
			return nil, false, fmt.Errorf("snapshot: map restore: entry %d of %d: %s length %d exceeds %d", i, count, what, n, maxMapField)
		}
		b, kept, err := src.field(int(n))
		if err != nil {
			return nil, false, fmt.Errorf("snapshot: map restore: entry %d of %d: %s: %w", i, count, what, eofIsUnexpected(err))
		}
		return b, kept, nil
	}
	for i := uint64(0); i < count; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("snapshot: map restore: %w", err)
			}
		}
		kb, _, err := field(i, "key")
		if err != nil {
			return err
		}
		key, err := c.keys.Decode(kb)
		if err != nil {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: key: %w", i, count, err)
		}
		vb, kept, err := field(i, "value")
		if err != nil {
			return err
		}
		var val V
		if c.rawValues && kept {
			val = any(vb).(V)
		} else if val, err = c.values.Decode(vb); err != nil {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: value of key %v: %w", i, count, key, err)
		}
		if !add(key, val) {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: duplicate key %v", i, count, key)
		}
	}
	switch err := src.end(); {
	case err == nil:
		return fmt.Errorf("snapshot: map restore: data after the %d entries", count)
	case err != io.EOF:
		return fmt.Errorf("snapshot: map restore: after the %d entries: %w", count, err)
	}
	return nil
}

// fieldSource hands out the map format's fields one after the other.
type fieldSource interface {
	uvarint() (uint64, error)
	// field returns the next n bytes. kept reports whether they stay
	// valid, and unchanged, for good; otherwise only until the next call.
	field(n int) (b []byte, kept bool, err error)
	// end returns io.EOF if nothing is left, nil if a byte is.
	end() error
}

// bufferedFields reads fields from any reader, decoding those that fit in
// its buffer in place.
type bufferedFields struct {
	br      *bufio.Reader
	buf     []byte // for fields larger than br's buffer
	discard int    // bytes of the last field still in br's buffer
}

func (f *bufferedFields) skip() {
	if f.discard > 0 {
		_, _ = f.br.Discard(f.discard) // Peek returned them: they are buffered
		f.discard = 0
	}
}

func (f *bufferedFields) uvarint() (uint64, error) {
	f.skip()
	return binary.ReadUvarint(f.br)
}

func (f *bufferedFields) field(n int) ([]byte, bool, error) {
	f.skip()
	if n <= readBufferBytes {
		b, err := f.br.Peek(n)
		if err != nil {
			return nil, false, err
		}
		f.discard = n
		return b, false, nil
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.br, f.buf); err != nil {
		return nil, false, err
	}
	return f.buf, false, nil
}

func (f *bufferedFields) end() error {
	f.skip()
	if _, err := f.br.ReadByte(); err != nil {
		return err
	}
	return nil
}

// chunkFields reads fields from chunks it owns: a field within one chunk
// is a slice of it, one that spans chunks a copy. Either is kept.
type chunkFields struct {
	next func() ([]byte, error) // the next chunk, now owned; io.EOF after the last
	cur  []byte
}

func (f *chunkFields) fill() error {
	for len(f.cur) == 0 {
		b, err := f.next()
		if err != nil {
			return err
		}
		f.cur = b
	}
	return nil
}

func (f *chunkFields) ReadByte() (byte, error) {
	if err := f.fill(); err != nil {
		return 0, err
	}
	b := f.cur[0]
	f.cur = f.cur[1:]
	return b, nil
}

func (f *chunkFields) uvarint() (uint64, error) {
	if v, n := binary.Uvarint(f.cur); n > 0 {
		f.cur = f.cur[n:]
		return v, nil
	}
	// At a chunk's end, or malformed: byte by byte, for ReadUvarint's
	// errors.
	return binary.ReadUvarint(f)
}

func (f *chunkFields) field(n int) ([]byte, bool, error) {
	if n <= len(f.cur) {
		b := f.cur[:n:n]
		f.cur = f.cur[n:]
		return b, true, nil
	}
	b := make([]byte, 0, min(n, 1<<20)) // n is a claim until the bytes are there
	for len(b) < n {
		if err := f.fill(); err != nil {
			return nil, false, err
		}
		take := min(n-len(b), len(f.cur))
		b = append(b, f.cur[:take]...)
		f.cur = f.cur[take:]
	}
	return b, true, nil
}

func (f *chunkFields) end() error { return f.fill() }

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
