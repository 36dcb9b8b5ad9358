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

// write writes count entries produced by each.
func (c entryCodec[K, V]) write(w io.Writer, count int, each func(yield func(K, V) bool)) (int64, error) {
	const flushAt = 64 << 10
	buf := make([]byte, 0, 2*flushAt)
	buf = append(buf, mapMagic...)
	buf = binary.AppendUvarint(buf, uint64(count))
	var written int64
	var err error
	var scratch []byte
	flush := func() bool {
		var n int
		n, err = w.Write(buf)
		written += int64(n)
		buf = buf[:0]
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
		if len(buf) >= flushAt {
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

// read decodes a stream and hands each entry to add, which reports whether
// the key was new; a duplicate key is an error. sized, when not nil, is
// first told how many entries the stream says it holds (an unverified
// claim: size hints from it must be capped).
func (c entryCodec[K, V]) read(ctx context.Context, r io.Reader, sized func(uint64), add func(K, V) bool) error {
	br := bufio.NewReaderSize(r, readBufferBytes)
	magic := make([]byte, len(mapMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return fmt.Errorf("snapshot: map restore: header: %w", eofIsUnexpected(err))
	}
	if string(magic) != mapMagic {
		return fmt.Errorf("snapshot: map restore: header %q is not %q", magic, mapMagic)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return fmt.Errorf("snapshot: map restore: entry count: %w", eofIsUnexpected(err))
	}
	if sized != nil {
		sized(count)
	}
	var buf []byte
	discard := 0 // bytes of the last field still in br's buffer
	field := func(i uint64, what string) ([]byte, error) {
		if discard > 0 {
			_, _ = br.Discard(discard) // Peek returned them: they are buffered
			discard = 0
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("snapshot: map restore: entry %d of %d: %s length: %w", i, count, what, eofIsUnexpected(err))
		}
		if n > maxMapField {
			return nil, fmt.Errorf("snapshot: map restore: entry %d of %d: %s length %d exceeds %d", i, count, what, n, maxMapField)
		}
		if n <= readBufferBytes {
			// Decode from the reader's buffer: no copy (codecs must not
			// keep b). discard drops it before the next field.
			b, err := br.Peek(int(n))
			if err != nil {
				return nil, fmt.Errorf("snapshot: map restore: entry %d of %d: %s: %w", i, count, what, eofIsUnexpected(err))
			}
			discard = int(n)
			return b, nil
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("snapshot: map restore: entry %d of %d: %s: %w", i, count, what, eofIsUnexpected(err))
		}
		return buf, nil
	}
	for i := uint64(0); i < count; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("snapshot: map restore: %w", err)
			}
		}
		kb, err := field(i, "key")
		if err != nil {
			return err
		}
		key, err := c.keys.Decode(kb)
		if err != nil {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: key: %w", i, count, err)
		}
		vb, err := field(i, "value")
		if err != nil {
			return err
		}
		val, err := c.values.Decode(vb)
		if err != nil {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: value of key %v: %w", i, count, key, err)
		}
		if !add(key, val) {
			return fmt.Errorf("snapshot: map restore: entry %d of %d: duplicate key %v", i, count, key)
		}
	}
	if discard > 0 {
		_, _ = br.Discard(discard)
	}
	switch _, err := br.ReadByte(); {
	case err == nil:
		return fmt.Errorf("snapshot: map restore: data after the %d entries", count)
	case err != io.EOF:
		return fmt.Errorf("snapshot: map restore: after the %d entries: %w", count, err)
	}
	return nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
