package snapshot

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// FormatVersion is the newest version of the byte format; this package
// reads versions [MinFormatVersion] to FormatVersion and writes the lowest
// version that describes a snapshot (1 unless a chunk is S2-compressed), so
// a snapshot compressed with zstd or not at all still opens with a build
// that only reads version 1.
//
// A snapshot is a header followed by frames:
//
//	header  magic "UPDSNP" | version u16 | flags u16 | reserved u16 |
//	        salt [16] | key check [16] | crc32c u32            (48 bytes)
//	frame   kind u8 | flags u8 | source u16 | seq u32 | raw u32 | stored u32 |
//	        payload [stored] | crc32c u32 of the frame so far
//
// Frames are numbered from 0 by seq. Data frames (kind 1) carry one chunk of
// a source (sources in manifest order, each source's chunks in order);
// then one manifest frame (kind 2, the JSON [Manifest]); then one end frame
// (kind 3, empty); then the stream ends. A payload is zstd-compressed when
// frame flag 1 is set (it is stored raw when compression does not help) and,
// when header flag 1 is set, sealed with AES-GCM under a key derived from
// the host's key and the header's salt (HMAC-SHA256), the frame's first 16
// bytes as additional data and seq as nonce, so frames cannot be altered,
// reordered or moved between snapshots. The key check is the seal of
// nothing under the all-ones nonce; it tells a wrong key from corruption.
const FormatVersion = 2

// MinFormatVersion is the oldest byte format version this package reads.
// Version 1 is version 2 without S2 (frame flag 2).
const MinFormatVersion = 1

const (
	formatMagic     = "UPDSNP"
	headerSize      = 48
	frameHeaderSize = 16
	frameCRCSize    = 4

	headerFlagEncrypted = 1
	frameFlagZstd       = 1
	frameFlagS2         = 2

	kindData     = 1
	kindManifest = 2
	kindEnd      = 3

	// maxChunkBytes bounds a chunk so a decoder never allocates more than
	// this per frame, whatever a corrupt header claims.
	maxChunkBytes = 16 << 20
	// maxStoredOverhead is the most compression and sealing add to a chunk.
	maxStoredOverhead = 1 << 16
	// maxManifestBytes bounds the manifest frame.
	maxManifestBytes = 64 << 20

	// decoderBufferBytes is the decoder's read buffer.
	decoderBufferBytes = 8 << 10
)

type header struct {
	version   uint16
	flags     uint16
	salt      [16]byte
	keyCheck  [16]byte
	encrypted bool
}

func (h *header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b, formatMagic)
	binary.LittleEndian.PutUint16(b[6:], h.version)
	binary.LittleEndian.PutUint16(b[8:], h.flags)
	copy(b[12:28], h.salt[:])
	copy(b[28:44], h.keyCheck[:])
	binary.LittleEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
	return b
}

// parseHeader checks the header's structure and checksum. It does not check
// the key.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("snapshot: header: %d bytes, need %d: %w", len(b), headerSize, errors.Join(ErrTruncated, ErrCorrupt))
	}
	if string(b[:6]) != formatMagic {
		return h, fmt.Errorf("snapshot: header: magic %q is not %q (not a snapshot): %w", b[:6], formatMagic, ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[:44], castagnoli), binary.LittleEndian.Uint32(b[44:]); got != want {
		return h, fmt.Errorf("snapshot: header: checksum %08x, stored %08x: %w", got, want, ErrCorrupt)
	}
	h.version = binary.LittleEndian.Uint16(b[6:])
	if h.version < MinFormatVersion || h.version > FormatVersion {
		return h, fmt.Errorf("snapshot: header: format version %d, this package reads %d to %d: %w", h.version, MinFormatVersion, FormatVersion, ErrFormatVersion)
	}
	h.flags = binary.LittleEndian.Uint16(b[8:])
	if h.flags&^headerFlagEncrypted != 0 {
		return h, fmt.Errorf("snapshot: header: unknown flags %#x: %w", h.flags, ErrCorrupt)
	}
	if reserved := binary.LittleEndian.Uint16(b[10:]); reserved != 0 {
		return h, fmt.Errorf("snapshot: header: reserved field is %#x, want 0: %w", reserved, ErrCorrupt)
	}
	copy(h.salt[:], b[12:28])
	copy(h.keyCheck[:], b[28:44])
	h.encrypted = h.flags&headerFlagEncrypted != 0
	return h, nil
}

// sealer derives the per-snapshot AEAD from the host's key and a salt.
func sealer(key []byte, salt [16]byte) (cipher.AEAD, error) {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("updraft snapshot v1\x00"))
	mac.Write(salt[:])
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("snapshot: key: %w", err)
	}
	return cipher.NewGCM(block)
}

func keyCheckNonce() []byte {
	n := make([]byte, 12)
	for i := range n {
		n[i] = 0xff
	}
	return n
}

func frameNonce(seq uint32) []byte {
	n := make([]byte, 12)
	binary.LittleEndian.PutUint32(n, seq)
	return n
}

// newHeader makes a fresh header of the given format version (and AEAD,
// when key is set).
func newHeader(version uint16, key []byte) (header, cipher.AEAD, error) {
	h := header{version: version}
	if _, err := rand.Read(h.salt[:]); err != nil {
		return h, nil, fmt.Errorf("snapshot: salt: %w", err)
	}
	if key == nil {
		return h, nil, nil
	}
	aead, err := sealer(key, h.salt)
	if err != nil {
		return h, nil, err
	}
	h.flags |= headerFlagEncrypted
	h.encrypted = true
	copy(h.keyCheck[:], aead.Seal(nil, keyCheckNonce(), nil, nil))
	return h, aead, nil
}

// openHeader checks key against h and returns the AEAD to open frames.
func openHeader(h header, key []byte) (cipher.AEAD, error) {
	switch {
	case h.encrypted && key == nil:
		return nil, ErrKeyRequired
	case !h.encrypted && key != nil:
		return nil, ErrNotEncrypted
	case !h.encrypted:
		return nil, nil
	}
	aead, err := sealer(key, h.salt)
	if err != nil {
		return nil, err
	}
	if _, err := aead.Open(nil, keyCheckNonce(), h.keyCheck[:], nil); err != nil {
		return nil, fmt.Errorf("snapshot: header: key check failed: %w", ErrWrongKey)
	}
	return aead, nil
}

// frame is one decoded frame; raw is its payload, decompressed and opened.
type frame struct {
	kind    byte
	flags   byte
	source  uint16
	seq     uint32
	payload []byte // as stored, unsealed; still compressed when flagged
	raw     []byte
	info    ChunkInfo
	offset  int64 // where the frame starts in the stream
	// rawCRCKnown is set when readFrame derived info.RawCRC32C from the
	// frame's checksum (the payload is the raw chunk).
	rawCRCKnown bool
}

// compressor compresses chunks with one codec. A nil *compressor stores
// them raw. It is safe for concurrent use.
type compressor struct {
	flag byte          // frameFlagZstd or frameFlagS2
	zenc *zstd.Encoder // for frameFlagZstd
}

// name is the codec's name in [Manifest.Compression].
func (c *compressor) name() string {
	switch {
	case c == nil:
		return "none"
	case c.flag == frameFlagS2:
		return "s2"
	default:
		return "zstd"
	}
}

// version is the lowest format version that can hold c's frames.
func (c *compressor) version() uint16 {
	if c != nil && c.flag == frameFlagS2 {
		return 2
	}
	return 1
}

// appendCompressed appends src compressed to dst.
func (c *compressor) appendCompressed(dst, src []byte) []byte {
	if c.flag == frameFlagZstd {
		return c.zenc.EncodeAll(src, dst)
	}
	n := s2.MaxEncodedLen(len(src))
	dst = slices.Grow(dst, n)
	out := s2.Encode(dst[len(dst):len(dst)+n], src) // in dst's spare room
	return dst[:len(dst)+len(out)]
}

// sealFrame builds a frame from raw. buf is reused for the result.
func sealFrame(buf []byte, kind byte, source uint16, seq uint32, raw []byte, comp *compressor, aead cipher.AEAD) ([]byte, ChunkInfo) {
	info := ChunkInfo{RawBytes: len(raw)}
	buf = append(buf[:0], make([]byte, frameHeaderSize)...)
	var flags byte
	payload := raw
	if comp != nil && len(raw) > 0 {
		out := comp.appendCompressed(buf, raw)
		if len(out)-frameHeaderSize < len(raw) {
			flags |= comp.flag
			buf = out
			payload = nil
		} else {
			buf = out[:frameHeaderSize]
		}
	}
	if payload != nil {
		buf = append(buf[:frameHeaderSize], payload...)
	}
	stored := len(buf) - frameHeaderSize
	if aead != nil {
		stored += aead.Overhead()
	}
	h := buf[:frameHeaderSize]
	h[0] = kind
	h[1] = flags
	binary.LittleEndian.PutUint16(h[2:], source)
	binary.LittleEndian.PutUint32(h[4:], seq)
	binary.LittleEndian.PutUint32(h[8:], uint32(len(raw)))
	binary.LittleEndian.PutUint32(h[12:], uint32(stored))
	if aead != nil {
		var hdr [frameHeaderSize]byte
		copy(hdr[:], h)
		buf = slices.Grow(buf, aead.Overhead()+frameCRCSize) // seal in place
		sealed := aead.Seal(buf[frameHeaderSize:frameHeaderSize], frameNonce(seq), buf[frameHeaderSize:], hdr[:])
		buf = buf[:frameHeaderSize+len(sealed)]
	}
	info.StoredBytes = stored
	info.StoredCRC32C = crc32.Checksum(buf, castagnoli)
	if payload != nil && aead == nil {
		// The payload is raw: its checksum follows from the frame's.
		info.RawCRC32C = crcOfSuffix(info.StoredCRC32C, crc32.Checksum(buf[:frameHeaderSize], castagnoli), len(raw))
	} else {
		info.RawCRC32C = crc32.Checksum(raw, castagnoli)
	}
	buf = binary.LittleEndian.AppendUint32(buf, info.StoredCRC32C)
	return buf, info
}

// decoder reads and checks frames in order: readFrame is the sequential
// half (structure, checksum, seal), openFrame the half that may run in
// parallel (decompression). [frameStream] drives both with bounded memory.
type decoder struct {
	r      *bufio.Reader
	name   string // for errors: the snapshot ID
	hdr    header
	aead   cipher.AEAD
	seq    uint32
	offset int64
	ended  bool
	// zdec is made by zstdDecoder on the first zstd frame.
	zdecOnce sync.Once
	zdec     *zstd.Decoder
	zdecErr  error
	// allowedFlags are the frame flags hdr.version knows.
	allowedFlags byte
	// skipRawCRC leaves ChunkInfo.RawCRC32C zero: set by a second pass
	// over bytes already verified, which checks the stored CRC instead.
	skipRawCRC bool
}

func newDecoder(r io.Reader, name string, key []byte) (*decoder, error) {
	// The buffer serves the frame headers: a payload of more than its
	// size is mostly read straight into the frame's buffer, and a larger
	// buffer would only copy more of it twice.
	d := &decoder{r: bufio.NewReaderSize(r, decoderBufferBytes), name: name}
	b := make([]byte, headerSize)
	n, err := io.ReadFull(d.r, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
		return nil, fmt.Errorf("snapshot %s: read header: %w", name, err)
	}
	h, err := parseHeader(b[:n])
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	d.hdr = h
	d.offset = headerSize
	d.allowedFlags = frameFlagZstd
	if h.version >= 2 {
		d.allowedFlags |= frameFlagS2
	}
	if d.aead, err = openHeader(h, key); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return d, nil
}

// zstdDecoder returns the decoder's zstd decoder, made on first use (an S2
// or uncompressed snapshot never needs one). Safe for concurrent use.
func (d *decoder) zstdDecoder() (*zstd.Decoder, error) {
	d.zdecOnce.Do(func() {
		d.zdec, d.zdecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(maxChunkBytes+maxStoredOverhead))
	})
	return d.zdec, d.zdecErr
}

// close releases the zstd decoder, if one was made. Call it once the
// frame stream using d is closed.
func (d *decoder) close() {
	d.zdecOnce.Do(func() {}) // no decoder is made after close
	if d.zdec != nil {
		d.zdec.Close()
	}
}

func (d *decoder) corrupt(at int64, format string, args ...any) error {
	return fmt.Errorf("snapshot %s: frame %d at offset %d: %s: %w", d.name, d.seq, at, fmt.Sprintf(format, args...), ErrCorrupt)
}

func (d *decoder) truncated(at int64, what string) error {
	return fmt.Errorf("snapshot %s: frame %d at offset %d: stream ends inside the %s: %w", d.name, d.seq, at, what, errors.Join(ErrTruncated, ErrCorrupt))
}

// readFrame is the sequential half of reading a frame: it reads the frame
// into buf (grown as needed and returned), checks its structure, sequence
// number and checksum, and opens its seal. f.payload is left for openFrame.
func (d *decoder) readFrame(buf []byte) (f *frame, _ []byte, err error) {
	at := d.offset
	if d.ended {
		return nil, buf, d.corrupt(at, "read past the end frame")
	}
	// The buffer is read into whole: growing it without zeroing (a pooled
	// buffer's old bytes are overwritten) saves a pass over every frame.
	buf = slices.Grow(buf[:0], frameHeaderSize)[:frameHeaderSize]
	if _, err := io.ReadFull(d.r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, buf, d.truncated(at, "frame header (no end frame)")
		}
		return nil, buf, fmt.Errorf("snapshot %s: frame %d at offset %d: %w", d.name, d.seq, at, err)
	}
	h := buf
	f = &frame{kind: h[0], flags: h[1], source: binary.LittleEndian.Uint16(h[2:]), seq: binary.LittleEndian.Uint32(h[4:]), offset: at}
	rawLen := binary.LittleEndian.Uint32(h[8:])
	storedLen := binary.LittleEndian.Uint32(h[12:])
	limit := uint32(maxChunkBytes)
	if f.kind == kindManifest {
		limit = maxManifestBytes
	}
	switch {
	case f.kind < kindData || f.kind > kindEnd:
		return nil, buf, d.corrupt(at, "unknown frame kind %d", f.kind)
	case f.flags&^d.allowedFlags != 0 || f.flags == frameFlagZstd|frameFlagS2:
		return nil, buf, d.corrupt(at, "unknown frame flags %#x", f.flags)
	case f.seq != d.seq:
		return nil, buf, d.corrupt(at, "sequence number %d, want %d (frames missing or reordered)", f.seq, d.seq)
	case rawLen > limit:
		return nil, buf, d.corrupt(at, "raw length %d exceeds the limit %d", rawLen, limit)
	case storedLen > limit+maxStoredOverhead:
		return nil, buf, d.corrupt(at, "stored length %d exceeds the limit %d", storedLen, limit+maxStoredOverhead)
	case f.kind == kindEnd && rawLen != 0:
		return nil, buf, d.corrupt(at, "end frame carries %d bytes", rawLen)
	}
	total := frameHeaderSize + int(storedLen) + frameCRCSize
	buf = slices.Grow(buf, total-frameHeaderSize)[:total]
	if _, err := io.ReadFull(d.r, buf[frameHeaderSize:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, buf, d.truncated(at, "frame payload")
		}
		return nil, buf, fmt.Errorf("snapshot %s: frame %d at offset %d: %w", d.name, d.seq, at, err)
	}
	body := buf[:total-frameCRCSize]
	want := binary.LittleEndian.Uint32(buf[total-frameCRCSize:])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, buf, d.corrupt(at, "checksum %08x, stored %08x", got, want)
	}
	f.info = ChunkInfo{RawBytes: int(rawLen), StoredBytes: int(storedLen), StoredCRC32C: want}
	f.payload = body[frameHeaderSize:]
	if f.flags&(frameFlagZstd|frameFlagS2) == 0 && d.aead == nil {
		// The payload is the chunk itself: its checksum follows from the
		// frame's, just verified, without a second pass over it.
		f.info.RawCRC32C = crcOfSuffix(want, crc32.Checksum(body[:frameHeaderSize], castagnoli), int(storedLen))
		f.rawCRCKnown = true
	}
	if d.aead != nil {
		if int(storedLen) < d.aead.Overhead() {
			return nil, buf, d.corrupt(at, "sealed payload of %d bytes is shorter than its tag", storedLen)
		}
		opened, err := d.aead.Open(f.payload[:0], frameNonce(f.seq), f.payload, body[:frameHeaderSize])
		if err != nil {
			return nil, buf, d.corrupt(at, "authentication failed (altered data)")
		}
		f.payload = opened
	}
	d.offset += int64(total)
	d.seq++
	if f.kind == kindEnd {
		d.ended = true
		if _, err := d.r.ReadByte(); err != io.EOF {
			return nil, buf, fmt.Errorf("snapshot %s: offset %d: data after the end frame: %w", d.name, d.offset, ErrCorrupt)
		}
	}
	return f, buf, nil
}

// openFrame is the half of reading a frame that may run on several
// goroutines at once: it decompresses f.payload into *dst (grown as needed)
// and checks its length. It sets f.raw and f.info.RawCRC32C.
func (d *decoder) openFrame(f *frame, dst *[]byte) error {
	raw := f.payload
	switch {
	case f.flags&frameFlagZstd != 0:
		zdec, err := d.zstdDecoder()
		if err != nil {
			return fmt.Errorf("snapshot %s: zstd: %w", d.name, err)
		}
		out, err := zdec.DecodeAll(f.payload, (*dst)[:0])
		if err != nil {
			return f.corrupt(d.name, "zstd: %v", err)
		}
		*dst = out
		raw = out
	case f.flags&frameFlagS2 != 0:
		// The block states its length first: check it against the frame
		// header before s2 allocates anything.
		n, err := s2.DecodedLen(f.payload)
		if err != nil {
			return f.corrupt(d.name, "s2: %v", err)
		}
		if n != f.info.RawBytes {
			return f.corrupt(d.name, "s2 block holds %d bytes, header says %d", n, f.info.RawBytes)
		}
		out, err := s2.Decode((*dst)[:cap(*dst)], f.payload)
		if err != nil {
			return f.corrupt(d.name, "s2: %v", err)
		}
		*dst = out
		raw = out
	}
	if len(raw) != f.info.RawBytes {
		return f.corrupt(d.name, "payload holds %d bytes, header says %d", len(raw), f.info.RawBytes)
	}
	f.raw = raw
	if !d.skipRawCRC && !f.rawCRCKnown {
		f.info.RawCRC32C = crc32.Checksum(raw, castagnoli)
	}
	return nil
}

func (f *frame) corrupt(name, format string, args ...any) error {
	return fmt.Errorf("snapshot %s: frame %d at offset %d: %s: %w", name, f.seq, f.offset, fmt.Sprintf(format, args...), ErrCorrupt)
}

// decodeManifest parses a manifest frame's payload.
func decodeManifest(raw []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest: %v: %w", err, ErrCorrupt)
	}
	return m, nil
}
