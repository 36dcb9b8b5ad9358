package snapshot

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"
)

// Codec turns values of T into bytes and back, for [Map]'s views. Append
// appends v's encoding to dst; Decode parses exactly the bytes one Append
// produced and must not keep b (copy what it needs). Both must be safe for
// concurrent use.
type Codec[T any] struct {
	Append func(dst []byte, v T) ([]byte, error)
	Decode func(b []byte) (T, error)
}

func (c Codec[T]) valid() bool { return c.Append != nil && c.Decode != nil }

// StringCodec stores a string as its bytes.
func StringCodec() Codec[string] {
	return Codec[string]{
		Append: func(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil },
		Decode: func(b []byte) (string, error) { return string(b), nil },
	}
}

// BytesCodec stores a []byte as itself; Decode copies.
func BytesCodec() Codec[[]byte] {
	return Codec[[]byte]{
		Append: func(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil },
		Decode: func(b []byte) ([]byte, error) { return bytes.Clone(b), nil },
	}
}

// Uint64Codec stores a uint64 as 8 little-endian bytes.
func Uint64Codec() Codec[uint64] {
	return Codec[uint64]{
		Append: func(dst []byte, v uint64) ([]byte, error) { return binary.LittleEndian.AppendUint64(dst, v), nil },
		Decode: func(b []byte) (uint64, error) {
			if len(b) != 8 {
				return 0, fmt.Errorf("uint64 needs 8 bytes, got %d", len(b))
			}
			return binary.LittleEndian.Uint64(b), nil
		},
	}
}

// Int64Codec stores an int64 as 8 little-endian bytes.
func Int64Codec() Codec[int64] {
	u := Uint64Codec()
	return Codec[int64]{
		Append: func(dst []byte, v int64) ([]byte, error) { return u.Append(dst, uint64(v)) },
		Decode: func(b []byte) (int64, error) { v, err := u.Decode(b); return int64(v), err },
	}
}

// IntCodec stores an int as 8 little-endian bytes.
func IntCodec() Codec[int] {
	u := Uint64Codec()
	return Codec[int]{
		Append: func(dst []byte, v int) ([]byte, error) { return u.Append(dst, uint64(v)) },
		Decode: func(b []byte) (int, error) { v, err := u.Decode(b); return int(v), err },
	}
}

// Uint32Codec stores a uint32 as 4 little-endian bytes.
func Uint32Codec() Codec[uint32] {
	return Codec[uint32]{
		Append: func(dst []byte, v uint32) ([]byte, error) { return binary.LittleEndian.AppendUint32(dst, v), nil },
		Decode: func(b []byte) (uint32, error) {
			if len(b) != 4 {
				return 0, fmt.Errorf("uint32 needs 4 bytes, got %d", len(b))
			}
			return binary.LittleEndian.Uint32(b), nil
		},
	}
}

// JSONCodec stores values with encoding/json.
func JSONCodec[T any]() Codec[T] {
	return Codec[T]{
		Append: func(dst []byte, v T) ([]byte, error) {
			b, err := json.Marshal(v)
			return append(dst, b...), err
		},
		Decode: func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		},
	}
}

// GobCodec stores each value with its own encoding/gob stream. It works for
// any gob-encodable type but is slow and large (the type is described in
// every value); prefer a hand-written Codec for hot state.
func GobCodec[T any]() Codec[T] {
	return Codec[T]{
		Append: func(dst []byte, v T) ([]byte, error) {
			buf := bytes.NewBuffer(dst)
			err := gob.NewEncoder(buf).Encode(&v)
			return buf.Bytes(), err
		},
		Decode: func(b []byte) (T, error) {
			var v T
			err := gob.NewDecoder(bytes.NewReader(b)).Decode(&v)
			return v, err
		},
	}
}

// BinaryCodec stores values whose pointer implements
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler.
func BinaryCodec[T any, PT interface {
	*T
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}]() Codec[T] {
	return Codec[T]{
		Append: func(dst []byte, v T) ([]byte, error) {
			b, err := PT(&v).MarshalBinary()
			return append(dst, b...), err
		},
		Decode: func(b []byte) (T, error) {
			var v T
			err := PT(&v).UnmarshalBinary(bytes.Clone(b))
			return v, err
		},
	}
}

// defaultCodec picks a built-in codec for common types and gob otherwise.
func defaultCodec[T any]() Codec[T] {
	var c any
	switch reflect.TypeFor[T]() {
	case reflect.TypeFor[string]():
		c = StringCodec()
	case reflect.TypeFor[[]byte]():
		c = BytesCodec()
	case reflect.TypeFor[uint64]():
		c = Uint64Codec()
	case reflect.TypeFor[int64]():
		c = Int64Codec()
	case reflect.TypeFor[int]():
		c = IntCodec()
	case reflect.TypeFor[uint32]():
		c = Uint32Codec()
	default:
		return GobCodec[T]()
	}
	return c.(Codec[T])
}
