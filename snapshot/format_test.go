package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// smallSnapshot writes a snapshot of two sources in several chunks with
// the default codec (S2) and returns the store, its manifest and its bytes.
func smallSnapshot(t testing.TB, key []byte) (*MemStore, Manifest, []byte) {
	return smallSnapshotWith(t, key, CompressionDefault)
}

func smallSnapshotWith(t testing.TB, key []byte, c Compression) (*MemStore, Manifest, []byte) {
	t.Helper()
	store := NewMemStore()
	a := &faultySource{data: bytes.Repeat([]byte("route table entry "), 400)}
	b := &faultySource{data: testValue(7, 5000)}
	e, err := New(store, map[string]Source{"a": a, "b": b}, Options{AppVersion: "1", Key: key, ChunkBytes: 2048, Compression: c})
	require.NoError(t, err)
	m, err := e.Snapshot(context.Background())
	require.NoError(t, err)
	raw, ok := store.Bytes(m.ID)
	require.True(t, ok)
	return store, m, raw
}

// frameOffsets returns where each frame starts.
func frameOffsets(t testing.TB, raw []byte) []int {
	var offs []int
	for off := headerSize; off < len(raw); {
		offs = append(offs, off)
		stored := binary.LittleEndian.Uint32(raw[off+12:])
		off += frameHeaderSize + int(stored) + frameCRCSize
	}
	return offs
}

// restoreInto tries to restore id from store into fresh sources and
// returns the error and whether any source received bytes.
func restoreInto(t testing.TB, store Store, id string, key []byte) (error, bool) {
	a, b := &faultySource{}, &faultySource{}
	e, err := New(store, map[string]Source{"a": a, "b": b}, Options{AppVersion: "1", Key: key})
	require.NoError(t, err)
	err = e.Restore(context.Background(), Manifest{ID: id})
	return err, a.restored != nil || b.restored != nil
}

func fixCRC(raw []byte, frameOff int) {
	stored := int(binary.LittleEndian.Uint32(raw[frameOff+12:]))
	end := frameOff + frameHeaderSize + stored
	binary.LittleEndian.PutUint32(raw[end:], crc32.Checksum(raw[frameOff:end], castagnoli))
}

func TestCorruptionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   []byte
		codec Compression
	}{
		{"plain/s2", nil, CompressionS2},
		{"encrypted/s2", testKey, CompressionS2},
		{"plain/zstd", nil, CompressionZstd},
		{"encrypted/zstd", testKey, CompressionZstd},
		{"plain/none", nil, CompressionNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, m, raw := smallSnapshotWith(t, tc.key, tc.codec)
			require.Equal(t, tc.codec.String(), m.Compression)
			offs := frameOffsets(t, raw)
			nData := len(m.Sources[0].Chunks) + len(m.Sources[1].Chunks)
			require.Len(t, offs, nData+2)
			manifestOff, endOff := offs[nData], offs[nData+1]
			type region struct {
				at   int
				want string
			}
			regions := map[string]region{
				"header magic":              {0, "magic"},
				"header version":            {6, "header: checksum"},
				"header flags":              {8, "header: checksum"},
				"header salt":               {20, "header: checksum"},
				"header key check":          {30, "header: checksum"},
				"header checksum":           {45, "header: checksum"},
				"first frame kind":          {offs[0], "frame 0 at offset 48: unknown frame kind"},
				"first frame source":        {offs[0] + 2, "frame 0 at offset 48: checksum"},
				"first frame seq":           {offs[0] + 4, "frame 0 at offset 48: sequence number"},
				"first frame raw length":    {offs[0] + 8, "frame 0 at offset 48"},
				"first frame stored length": {offs[0] + 13, "frame 0 at offset 48"},
				"first frame payload":       {offs[0] + frameHeaderSize + 5, "frame 0 at offset 48: checksum"},
				"second source payload":     {offs[len(m.Sources[0].Chunks)] + frameHeaderSize + 1, "checksum"},
				"last data frame checksum":  {manifestOff - 2, "checksum"},
				"manifest payload":          {manifestOff + frameHeaderSize + 3, "checksum"},
				"end frame flags":           {endOff + 1, "unknown frame flags"},
				"end frame checksum":        {len(raw) - 1, "checksum"},
			}
			for name, r := range regions {
				t.Run(name, func(t *testing.T) {
					bad := bytes.Clone(raw)
					bad[r.at] ^= 0x10
					store.Put(m.ID, bad)
					err, touched := restoreInto(t, store, m.ID, tc.key)
					require.ErrorIs(t, err, ErrCorrupt)
					require.ErrorContains(t, err, r.want)
					require.False(t, touched, "a source received bytes from a corrupt snapshot")
				})
			}
			t.Run("payload altered and its checksum recomputed", func(t *testing.T) {
				bad := bytes.Clone(raw)
				bad[offs[1]+frameHeaderSize+2] ^= 0x01
				fixCRC(bad, offs[1])
				store.Put(m.ID, bad)
				err, touched := restoreInto(t, store, m.ID, tc.key)
				require.ErrorIs(t, err, ErrCorrupt)
				if tc.codec == CompressionNone && tc.key == nil {
					// Nothing in the frame tells: the manifest's raw checksum does.
					require.ErrorContains(t, err, `manifest: source "a" chunk 1`)
				} else {
					require.ErrorContains(t, err, "frame 1 at offset")
				}
				if tc.key != nil {
					require.ErrorContains(t, err, "authentication failed")
				}
				require.False(t, touched)
			})
			t.Run("frames swapped", func(t *testing.T) {
				bad := bytes.Clone(raw[:offs[0]])
				bad = append(bad, raw[offs[1]:offs[2]]...)
				bad = append(bad, raw[offs[0]:offs[1]]...)
				bad = append(bad, raw[offs[2]:]...)
				store.Put(m.ID, bad)
				err, touched := restoreInto(t, store, m.ID, tc.key)
				require.ErrorIs(t, err, ErrCorrupt)
				require.ErrorContains(t, err, "sequence number 1, want 0")
				require.False(t, touched)
			})
			t.Run("data after the end", func(t *testing.T) {
				store.Put(m.ID, append(bytes.Clone(raw), 0))
				err, touched := restoreInto(t, store, m.ID, tc.key)
				require.ErrorIs(t, err, ErrCorrupt)
				require.ErrorContains(t, err, "data after the end frame")
				require.False(t, touched)
			})
			t.Run("truncated anywhere", func(t *testing.T) {
				for cut := 0; cut < len(raw); cut += 1 + cut/64 {
					store.Put(m.ID, raw[:cut])
					err, touched := restoreInto(t, store, m.ID, tc.key)
					require.ErrorIs(t, err, ErrTruncated, "cut at %d", cut)
					require.ErrorIs(t, err, ErrCorrupt, "cut at %d", cut)
					require.False(t, touched, "cut at %d", cut)
				}
			})
			store.Put(m.ID, raw)
			err, touched := restoreInto(t, store, m.ID, tc.key)
			require.NoError(t, err, "the untouched snapshot must restore")
			require.True(t, touched)
		})
	}
}

func TestKeysAreChecked(t *testing.T) {
	plainStore, plain, _ := smallSnapshot(t, nil)
	sealedStore, sealed, _ := smallSnapshot(t, testKey)
	wrong := bytes.Repeat([]byte{0x43}, 32)
	cases := map[string]struct {
		store Store
		id    string
		key   []byte
		want  error
	}{
		"wrong key":             {sealedStore, sealed.ID, wrong, ErrWrongKey},
		"missing key":           {sealedStore, sealed.ID, nil, ErrKeyRequired},
		"key for a plain one":   {plainStore, plain.ID, testKey, ErrNotEncrypted},
		"shorter key, same pre": {sealedStore, sealed.ID, testKey[:16], ErrWrongKey},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err, touched := restoreInto(t, c.store, c.id, c.key)
			require.ErrorIs(t, err, c.want)
			require.False(t, touched)
		})
	}
}

func TestSnapshotUnderAnotherNameIsRefused(t *testing.T) {
	store, m, raw := smallSnapshot(t, testKey)
	store.Put("20990101T000000.000000000Z-00000000", raw)
	err, touched := restoreInto(t, store, "20990101T000000.000000000Z-00000000", testKey)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "the store's data is snapshot "+m.ID)
	require.False(t, touched)
}

func TestFormatVersionIsChecked(t *testing.T) {
	store, m, raw := smallSnapshot(t, nil)
	bad := bytes.Clone(raw)
	binary.LittleEndian.PutUint16(bad[6:], FormatVersion+1)
	binary.LittleEndian.PutUint32(bad[44:], crc32.Checksum(bad[:44], castagnoli))
	store.Put(m.ID, bad)
	err, touched := restoreInto(t, store, m.ID, nil)
	require.ErrorIs(t, err, ErrFormatVersion)
	require.ErrorContains(t, err, "format version 3, this package reads 1 to 2")
	require.False(t, touched)
}

func FuzzDecode(f *testing.F) {
	_, _, plain := smallSnapshot(f, nil)
	_, _, sealed := smallSnapshot(f, testKey)
	_, _, plainZstd := smallSnapshotWith(f, nil, CompressionZstd)
	_, _, raw := smallSnapshotWith(f, nil, CompressionNone)
	v1, err := os.ReadFile(filepath.Join("testdata", "v1-zstd.snap"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain, false)
	f.Add(sealed, true)
	f.Add(plainZstd, false)
	f.Add(raw, false)
	f.Add(v1, false)
	f.Add(plain[:headerSize+7], false)
	f.Add([]byte("UPDSNP"), false)
	f.Fuzz(func(t *testing.T, in []byte, useKey bool) {
		var key []byte
		if useKey {
			key = testKey
		}
		m, err := Verify(context.Background(), bytes.NewReader(in), "fuzz", key)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormatVersion) && !errors.Is(err, ErrKeyRequired) &&
				!errors.Is(err, ErrNotEncrypted) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			return
		}
		if m.FormatVersion < MinFormatVersion || m.FormatVersion > FormatVersion || ValidID(m.ID) != nil {
			t.Fatalf("verified a manifest that is not valid: %+v", m)
		}
	})
}

// The fixtures in testdata were written by the version-1 writer (zstd, the
// only codec it had); they must keep restoring.
func TestVersion1SnapshotsRestore(t *testing.T) {
	for _, tc := range []struct {
		file, id string
		key      []byte
	}{
		{"v1-zstd.snap", "20261126T120000.000000000Z-96dd2ba2", nil},
		{"v1-zstd-sealed.snap", "20261126T120000.000000000Z-59c45a8a", testKey},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			require.Equal(t, uint16(1), binary.LittleEndian.Uint16(raw[6:]), "fixture is not version 1")
			store := NewMemStore()
			store.Put(tc.id, raw)
			a, b := &faultySource{}, &faultySource{}
			e, err := New(store, map[string]Source{"a": a, "b": b}, Options{AppVersion: "1", Key: tc.key})
			require.NoError(t, err)
			m, err := e.Load(context.Background(), tc.id)
			require.NoError(t, err)
			require.Equal(t, 1, m.FormatVersion)
			require.Equal(t, "zstd", m.Compression)
			require.NoError(t, e.Restore(context.Background(), m))
			require.Equal(t, bytes.Repeat([]byte("route table entry "), 400), a.restored)
			require.Equal(t, testValue(7, 5000), b.restored)
		})
	}
}

// A version-1 snapshot cannot hold S2 frames: a frame claiming S2 in one
// is refused (a version-1 reader would refuse it too).
func TestVersion1RefusesS2Frames(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "v1-zstd.snap"))
	require.NoError(t, err)
	offs := frameOffsets(t, raw)
	raw[offs[0]+1] = frameFlagS2
	fixCRC(raw, offs[0])
	id := "20261126T120000.000000000Z-96dd2ba2"
	store := NewMemStore()
	store.Put(id, raw)
	err, touched := restoreInto(t, store, id, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "frame 0 at offset 48: unknown frame flags 0x2")
	require.False(t, touched)
}

// Each codec writes the lowest format version that holds it, records
// itself in the manifest, and any engine restores any codec.
func TestCodecsInterchange(t *testing.T) {
	for _, c := range []struct {
		codec   Compression
		level   int
		name    string
		version int
	}{
		{CompressionDefault, 0, "s2", 2},
		{CompressionS2, 0, "s2", 2},
		{CompressionZstd, 0, "zstd", 1},
		{CompressionDefault, 3, "zstd", 1},
		{CompressionNone, 0, "none", 1},
		{CompressionDefault, NoCompression, "none", 1},
	} {
		t.Run(fmt.Sprintf("%v/level=%d", c.codec, c.level), func(t *testing.T) {
			store := NewMemStore()
			src := &faultySource{data: testValue(3, 100_000)}
			e, err := New(store, map[string]Source{"s": src}, Options{AppVersion: "1", Compression: c.codec, CompressionLevel: c.level, ChunkBytes: 16 << 10})
			require.NoError(t, err)
			m, err := e.Snapshot(context.Background())
			require.NoError(t, err)
			require.Equal(t, c.name, m.Compression)
			require.Equal(t, c.version, m.FormatVersion)
			raw, _ := store.Bytes(m.ID)
			require.Equal(t, uint16(c.version), binary.LittleEndian.Uint16(raw[6:]))
			if c.name != "none" {
				require.Less(t, m.Sources[0].StoredBytes, m.Sources[0].RawBytes, "%s did not compress", c.name)
			}
			dst := &faultySource{}
			other, err := New(store, map[string]Source{"s": dst}, Options{AppVersion: "1", Compression: CompressionZstd})
			require.NoError(t, err)
			require.NoError(t, other.Restore(context.Background(), m))
			require.Equal(t, src.data, dst.restored)
		})
	}
}

func TestCompressionOptionsAreChecked(t *testing.T) {
	for name, opts := range map[string]Options{
		"unknown codec":      {Compression: 9},
		"negative codec":     {Compression: -1},
		"s2 with a level":    {Compression: CompressionS2, CompressionLevel: 2},
		"none with a level":  {Compression: CompressionNone, CompressionLevel: 1},
		"zstd with no level": {Compression: CompressionZstd, CompressionLevel: NoCompression},
		"level out of range": {CompressionLevel: 5},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(NewMemStore(), map[string]Source{"s": &faultySource{}}, opts)
			require.Error(t, err)
			require.ErrorContains(t, err, "snapshot: New: Compression")
		})
	}
}

// Restore reads a snapshot once when it fits in RestoreMemory and twice
// otherwise; both paths restore the same bytes.
func TestRestoreReadsOnceOrTwice(t *testing.T) {
	for name, c := range map[string]struct {
		memory    int64
		wantOpens int
	}{
		"default (fits)":      {0, 1},
		"budget too small":    {10_000, 2},
		"always twice":        {-1, 2},
		"budget exactly fits": {100_000 + 7000 + 8000, 1},
	} {
		t.Run(name, func(t *testing.T) {
			mem := NewMemStore()
			store := &countingStore{MemStore: mem}
			src := &faultySource{data: testValue(1, 100_000)}
			other := &faultySource{data: testValue(2, 7000)}
			e, err := New(store, map[string]Source{"a": src, "b": other}, Options{AppVersion: "1", ChunkBytes: 4096})
			require.NoError(t, err)
			m, err := e.Snapshot(context.Background())
			require.NoError(t, err)
			a, b := &faultySource{}, &faultySource{}
			r, err := New(store, map[string]Source{"a": a, "b": b}, Options{AppVersion: "1", RestoreMemory: c.memory})
			require.NoError(t, err)
			store.opens = 0
			require.NoError(t, r.Restore(context.Background(), Manifest{ID: m.ID}))
			require.Equal(t, c.wantOpens, store.opens)
			if c.memory > 0 && c.wantOpens == 2 {
				// With m's sizes, Restore knows up front it will not fit.
				store.opens = 0
				require.NoError(t, r.Restore(context.Background(), m))
				require.Equal(t, 2, store.opens)
			}
			require.Equal(t, src.data, a.restored)
			require.Equal(t, other.data, b.restored)
		})
	}
}

// A store whose bytes change between Restore's two reads is caught: the
// second read's chunks are checked against the verified manifest.
func TestRestoreCatchesASnapshotChangingBetweenReads(t *testing.T) {
	for _, codec := range []Compression{CompressionS2, CompressionNone} {
		t.Run(codec.String(), func(t *testing.T) {
			mem, m, raw := smallSnapshotWith(t, nil, codec)
			offs := frameOffsets(t, raw)
			changed := bytes.Clone(raw)
			changed[offs[1]+frameHeaderSize+3] ^= 0x01 // source "a", chunk 1
			fixCRC(changed, offs[1])
			store := &countingStore{MemStore: mem, second: map[string][]byte{m.ID: changed}}
			a, b := &faultySource{}, &faultySource{}
			e, err := New(store, map[string]Source{"a": a, "b": b}, Options{AppVersion: "1", RestoreMemory: -1})
			require.NoError(t, err)
			err = e.Restore(context.Background(), m)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, "frame 1 at offset")
			if codec == CompressionNone {
				require.ErrorContains(t, err, `source "a": chunk differs from the verified one`)
			}
			// Source a read chunk 0 and then got the error in place of
			// the changed chunk 1; source b got nothing.
			require.Len(t, a.restored, m.Sources[0].Chunks[0].RawBytes)
			require.Nil(t, b.restored)
		})
	}
}

// countingStore counts Opens and, when second holds an ID, serves those
// bytes from the second Open on.
type countingStore struct {
	*MemStore
	opens  int
	second map[string][]byte
}

func (s *countingStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	s.opens++
	if b, ok := s.second[id]; ok && s.opens > 1 {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return s.MemStore.Open(ctx, id)
}
