package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-multierror"
	"github.com/klauspost/compress/zstd"
)

// DefaultChunkBytes is the uncompressed chunk size when
// [Options.ChunkBytes] is zero. Small enough that the cores compress (and
// on restore decompress) the first chunks while the next are cut and the
// last ones do not leave them idle for long; large enough that a 1 GB
// snapshot's manifest stays small (4096 chunks). 256 KiB restored 10 MB
// about 10% faster than 1 MiB on two cores, at the same ratio.
const DefaultChunkBytes = 256 << 10

// UpgradeFunc converts one source's bytes written by app version from into
// the form this app version's source reads. It returns r itself when nothing
// needs converting, or an error (wrapping [ErrAppVersion] is customary) to
// refuse the snapshot.
type UpgradeFunc func(ctx context.Context, from Manifest, source string, r io.Reader) (io.Reader, error)

// Options configures an [Engine]. The zero value is valid: no encryption,
// time.Now, logs discarded, no host pause hook, snapshots of other app
// versions refused.
type Options struct {
	// AppVersion is recorded in each manifest and compared on restore.
	AppVersion string
	// Key, when set, seals every snapshot with AES-256-GCM under a key
	// derived from it; it must be 16 to 64 bytes of secret randomness. With
	// a key set, unencrypted snapshots are refused ([ErrNotEncrypted]).
	Key []byte
	// Clock stamps [Manifest.Created] and names snapshots. nil = time.Now.
	Clock func() time.Time
	// Logger receives progress and clean-up notices. nil discards them.
	Logger *slog.Logger
	// Pause, when set, is called first when a cut starts and its resume
	// function last when it ends: a host-wide pause (for example, stop the
	// packet workers) around the sources' own [Pauser]s. It may be nil.
	Pause func(ctx context.Context) (resume func(), err error)
	// Upgrade is consulted when a snapshot's AppVersion differs from
	// AppVersion; nil refuses such snapshots with [ErrAppVersion].
	Upgrade UpgradeFunc
	// ChunkBytes is the uncompressed chunk size, at most 16 MiB.
	// 0 = [DefaultChunkBytes].
	ChunkBytes int
	// Concurrency is how many chunks are compressed and sealed at once.
	// 0 = GOMAXPROCS, or 1 when CPUShare is set.
	Concurrency int
	// CPUShare, when above 0, paces the encoding of a snapshot so that it
	// takes at most this share of one core's time (0 < CPUShare <= 1): one
	// goroutine encodes and seals the chunks and, after each one, sleeps
	// until its work is at most CPUShare of the time since it started. A
	// host that serves on few cores sets it so that a snapshot taken while
	// it serves does not starve the serving goroutines: the snapshot takes
	// about 1/CPUShare times as long instead. The work is timed by the wall
	// clock, so time the encoder spends descheduled counts as work and
	// slows it further. 0 = no pacing; with CPUShare set, a Concurrency
	// above 1 is refused.
	CPUShare float64
	// Compression picks the chunks' codec; the zero value,
	// [CompressionDefault], is S2 unless CompressionLevel asks for zstd.
	Compression Compression
	// CompressionLevel is a zstd level (1 fastest .. 4 best; setting one
	// with Compression left at its default selects zstd), or
	// [NoCompression] to store chunks as they are (less CPU, more bytes).
	// 0 = the codec's default (zstd: 1, the fastest level). S2 has one
	// level: a level above 0 with [CompressionS2] is refused.
	CompressionLevel int
	// RestoreMemory is how many bytes of raw state Restore may keep in
	// memory so that it reads a snapshot once: verification keeps the
	// verified chunks, and the sources are fed from them. [Stager]
	// sources are fed while verification reads and do not count. A larger
	// snapshot is read twice (verified, then read again and fed to the
	// sources), so memory stays bounded whatever the state's size.
	// 0 = [DefaultRestoreMemory]; negative = always read twice.
	RestoreMemory int64
}

// DefaultRestoreMemory is [Options.RestoreMemory] when it is zero.
const DefaultRestoreMemory = 32 << 20

// NoCompression, as [Options.CompressionLevel], stores chunks uncompressed.
const NoCompression = -1

// Compression selects how an [Engine] compresses chunks. The codec is
// recorded in every frame (and in [Manifest.Compression]), so Restore reads
// any of them whatever the engine's own setting.
type Compression int

const (
	// CompressionDefault is [CompressionS2], or [CompressionZstd] when
	// [Options.CompressionLevel] is above 0, or [CompressionNone] when it
	// is [NoCompression].
	CompressionDefault Compression = iota
	// CompressionS2 compresses with S2 (github.com/klauspost/compress/s2):
	// on the benchmark state (half random bytes) about 0.8 GB/s per core to
	// compress and 2–4 GB/s to decompress, 3–4x zstd's speed, saving about
	// 30% where zstd saves 50%.
	// It suits snapshots taken just before an update, when the host wants
	// the state out fast. It needs format version 2.
	CompressionS2
	// CompressionZstd compresses with zstd at [Options.CompressionLevel]:
	// smaller snapshots (for a remote or metered store) at several times
	// S2's CPU cost.
	CompressionZstd
	// CompressionNone stores chunks as they are.
	CompressionNone
)

// String returns the codec's name as recorded in [Manifest.Compression].
func (c Compression) String() string {
	switch c {
	case CompressionDefault:
		return "default"
	case CompressionS2:
		return "s2"
	case CompressionZstd:
		return "zstd"
	case CompressionNone:
		return "none"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// newCompressor resolves Options.Compression and CompressionLevel; nil
// means no compression.
func newCompressor(opts Options, workers int) (*compressor, error) {
	c, level := opts.Compression, opts.CompressionLevel
	if level < NoCompression || level > 4 {
		return nil, fmt.Errorf("snapshot: New: CompressionLevel %d out of range -1..4", level)
	}
	if c < CompressionDefault || c > CompressionNone {
		return nil, fmt.Errorf("snapshot: New: Compression %d is not a known codec", int(c))
	}
	if c == CompressionDefault {
		switch {
		case level == NoCompression:
			c = CompressionNone
		case level > 0:
			c = CompressionZstd
		default:
			c = CompressionS2
		}
	}
	switch {
	case c == CompressionNone && level > 0,
		c != CompressionNone && level == NoCompression,
		c == CompressionS2 && level > 0:
		return nil, fmt.Errorf("snapshot: New: Compression %v and CompressionLevel %d contradict each other", c, level)
	}
	switch c {
	case CompressionNone:
		return nil, nil
	case CompressionS2:
		return &compressor{flag: frameFlagS2}, nil
	}
	zlevel := zstd.SpeedFastest
	if level > 0 {
		zlevel = zstd.EncoderLevel(level)
	}
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zlevel), zstd.WithEncoderConcurrency(workers), zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false)) // every chunk has its own CRC-32C already
	if err != nil {
		return nil, fmt.Errorf("snapshot: New: zstd: %w", err)
	}
	return &compressor{flag: frameFlagZstd, zenc: zenc}, nil
}

// Engine is the [Snapshotter]: it captures the registered sources as one
// consistent cut and writes them to a [Store] in the format described at
// [FormatVersion]. Snapshot and Restore run while the sources serve; the
// Engine is safe for concurrent use (two cuts over the same [Pauser]s wait
// for each other's pause).
type Engine struct {
	metrics *metrics
	store   Store
	names   []string // sorted source names
	sources map[string]Source
	opts    Options
	log     *slog.Logger
	comp    *compressor // nil: chunks stored raw
	workers int
	// clock times and sleeps the paced encoding (Options.CPUShare).
	clock pacingClock
	// restoreMemory is Options.RestoreMemory resolved; 0 = read twice.
	restoreMemory int64
	// buffers recycles frame buffers across reads, chunkBufs chunk and
	// frame buffers across snapshots.
	buffers   bufferPool
	chunkBufs sync.Pool
}

var _ Snapshotter = (*Engine)(nil)

// New returns an Engine over store and the named sources. It fails if store
// is nil, there are no sources, a name is empty or invalid, a source is nil,
// or an option is out of range.
func New(store Store, sources map[string]Source, opts Options) (*Engine, error) {
	if store == nil {
		return nil, errors.New("snapshot: New: store is nil")
	}
	if len(sources) == 0 {
		return nil, errors.New("snapshot: New: no sources")
	}
	if len(sources) > 1<<16 {
		return nil, fmt.Errorf("snapshot: New: %d sources, at most %d", len(sources), 1<<16)
	}
	names := make([]string, 0, len(sources))
	for name, src := range sources {
		if name == "" {
			return nil, errors.New("snapshot: New: a source has an empty name")
		}
		if src == nil {
			return nil, fmt.Errorf("snapshot: New: source %q is nil", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	if err := checkSourceNames(names); err != nil {
		return nil, err
	}
	if err := checkDistinctSources(names, sources); err != nil {
		return nil, err
	}
	if opts.Key != nil && (len(opts.Key) < 16 || len(opts.Key) > 64) {
		return nil, fmt.Errorf("snapshot: New: Key is %d bytes, want 16 to 64", len(opts.Key))
	}
	if opts.ChunkBytes < 0 || opts.ChunkBytes > maxChunkBytes {
		return nil, fmt.Errorf("snapshot: New: ChunkBytes %d out of range 0..%d", opts.ChunkBytes, maxChunkBytes)
	}
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("snapshot: New: Concurrency %d is negative", opts.Concurrency)
	}
	if !(opts.CPUShare >= 0 && opts.CPUShare <= 1) { // NaN fails both
		return nil, fmt.Errorf("snapshot: New: CPUShare %v out of range: want 0 (no pacing) or above 0 up to 1 (a share of one core)", opts.CPUShare)
	}
	if opts.CPUShare > 0 && opts.Concurrency > 1 {
		return nil, fmt.Errorf("snapshot: New: CPUShare %v paces one encoding goroutine, but Concurrency is %d: leave Concurrency at 0 or 1", opts.CPUShare, opts.Concurrency)
	}
	workers := opts.Concurrency
	switch {
	case opts.CPUShare > 0:
		workers = 1
	case workers == 0:
		workers = runtime.GOMAXPROCS(0)
	}
	comp, err := newCompressor(opts, workers)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	opts.Key = slices.Clone(opts.Key)
	srcs := make(map[string]Source, len(sources))
	for k, v := range sources {
		srcs[k] = v
	}
	e := &Engine{metrics: newMetrics("updraft"), store: store, names: names, sources: srcs, opts: opts, log: loggerOrDiscard(opts.Logger), comp: comp, workers: workers,
		clock: pacingClock{now: time.Now, sleep: sleepCtx}}
	switch {
	case opts.RestoreMemory == 0:
		e.restoreMemory = DefaultRestoreMemory
	case opts.RestoreMemory > 0:
		e.restoreMemory = opts.RestoreMemory
	}
	return e, nil
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Snapshot implements [Snapshotter]. It pauses every source (host hook
// first, then each [Pauser] in name order), captures a view of each,
// resumes them all, and only then serialises the views to a new snapshot in
// the store. If a source fails or panics during the cut, the cut is
// abandoned, every source is resumed and the error (matching [ErrCapture])
// returned. If writing fails, the half-written snapshot is cancelled;
// earlier snapshots are never touched.
func (e *Engine) Snapshot(ctx context.Context) (m Manifest, err error) {
	start := time.Now()
	defer func() { e.metrics.observe("snapshot", start, m.RawBytes(), err) }()
	return e.snapshot(ctx)
}

func (e *Engine) snapshot(ctx context.Context) (Manifest, error) {
	if err := ctx.Err(); err != nil {
		return Manifest{}, fmt.Errorf("snapshot: %w", err)
	}
	created := e.opts.Clock().UTC()
	views, pause, err := e.cut(ctx)
	if err != nil {
		return Manifest{}, err
	}
	e.metrics.Pause.Observe(pause.Seconds())
	defer closeViews(views)
	m := Manifest{
		ID:            newID(created),
		Created:       created,
		AppVersion:    e.opts.AppVersion,
		Pause:         pause,
		FormatVersion: int(e.comp.version()),
		Encrypted:     e.opts.Key != nil,
		Compression:   e.comp.name(),
		ChunkBytes:    e.opts.ChunkBytes,
	}
	e.log.Debug("snapshot: cut taken", "id", m.ID, "pause", pause, "sources", len(views))
	sink, err := e.store.Create(ctx, m.ID)
	if err != nil {
		return Manifest{}, fmt.Errorf("snapshot %s: create: %w", m.ID, err)
	}
	if err := e.write(ctx, sink, &m, views); err != nil {
		if cerr := sink.Cancel(); cerr != nil {
			err = multierror.Append(err, cerr)
		}
		return Manifest{}, err
	}
	if err := sink.Close(); err != nil {
		return Manifest{}, fmt.Errorf("snapshot %s: commit: %w", m.ID, err)
	}
	e.log.Info("snapshot: written", "id", m.ID, "pause", pause, "raw_bytes", m.RawBytes())
	return m, nil
}

func newID(t time.Time) string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return t.Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
}

func closeViews(views []View) {
	for _, v := range views {
		if c, ok := v.(io.Closer); ok {
			c.Close()
		}
	}
}

// cut pauses everything, captures every source and resumes everything. It
// returns the views in e.names order and how long the pause lasted.
func (e *Engine) cut(ctx context.Context) (views []View, pause time.Duration, err error) {
	var resumes []func()
	start := time.Now()
	defer func() {
		for i := len(resumes) - 1; i >= 0; i-- {
			resumes[i]()
		}
		pause = time.Since(start)
		if err != nil {
			closeViews(views)
			views = nil
		}
	}()
	if e.opts.Pause != nil {
		resume, err := callPause(ctx, "Options.Pause", e.opts.Pause)
		if err != nil {
			return nil, 0, err
		}
		if resume != nil {
			resumes = append(resumes, resume)
		}
	}
	for _, name := range e.names {
		p, ok := e.sources[name].(Pauser)
		if !ok {
			continue
		}
		if err := callPauser(ctx, name, p); err != nil {
			return nil, 0, err
		}
		resumes = append(resumes, p.Resume)
	}
	views = make([]View, 0, len(e.names))
	for _, name := range e.names {
		v, err := capture(ctx, name, e.sources[name])
		if err != nil {
			return views, 0, err
		}
		views = append(views, v)
	}
	return views, 0, nil
}

func callPause(ctx context.Context, name string, f func(context.Context) (func(), error)) (resume func(), err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("snapshot: %s panicked: %v: %w", name, p, ErrCapture)
		}
	}()
	resume, err = f(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %s: %w (%w)", name, err, ErrCapture)
	}
	return resume, nil
}

func callPauser(ctx context.Context, name string, p Pauser) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapshot: source %q: pause panicked: %v: %w", name, r, ErrCapture)
		}
	}()
	if err := p.Pause(ctx); err != nil {
		return fmt.Errorf("snapshot: source %q: pause: %w (%w)", name, err, ErrCapture)
	}
	return nil
}

func capture(ctx context.Context, name string, src Source) (v View, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapshot: source %q: capture panicked: %v: %w", name, r, ErrCapture)
		}
	}()
	v, err = src.Capture(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: source %q: capture: %w (%w)", name, err, ErrCapture)
	}
	if v == nil {
		return nil, fmt.Errorf("snapshot: source %q: capture returned a nil view: %w", name, ErrCapture)
	}
	return v, nil
}

// write serialises the views to sink and fills in m.Sources.
func (e *Engine) write(ctx context.Context, sink io.Writer, m *Manifest, views []View) error {
	hdr, aead, err := newHeader(uint16(m.FormatVersion), e.opts.Key)
	if err != nil {
		return err
	}
	if _, err := sink.Write(hdr.marshal()); err != nil {
		return fmt.Errorf("snapshot %s: write header: %w", m.ID, err)
	}
	p := newPipeline(ctx, sink, e.comp, aead, e.workers, e.opts.ChunkBytes, &e.chunkBufs)
	if e.opts.CPUShare > 0 {
		p.pace = newPacer(e.opts.CPUShare, e.clock)
	}
	m.Sources = make([]SourceInfo, len(views))
	for i, v := range views {
		name := e.names[i]
		cw := &chunkWriter{p: p, source: uint16(i), size: e.opts.ChunkBytes, buf: p.buffer()}
		n, err := writeView(name, v, cw)
		if err == nil {
			err = cw.flush()
		}
		if err != nil {
			err = fmt.Errorf("snapshot %s: source %q: %w", m.ID, name, err)
			if cerr := p.close(); cerr != nil && !errors.Is(err, cerr) {
				err = multierror.Append(err, cerr)
			}
			return err
		}
		m.Sources[i] = SourceInfo{Name: name, RawBytes: n}
	}
	infos, err := p.finish()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", m.ID, err)
	}
	for _, in := range infos {
		s := &m.Sources[in.source]
		s.Chunks = append(s.Chunks, in.info)
		s.StoredBytes += int64(in.info.StoredBytes)
	}
	if err := checkSourceSizes(m); err != nil {
		return err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("snapshot %s: manifest: %w", m.ID, err)
	}
	if len(mb) > maxManifestBytes {
		return fmt.Errorf("snapshot %s: manifest is %d bytes, limit %d (raise ChunkBytes)", m.ID, len(mb), maxManifestBytes)
	}
	seq := uint32(len(infos))
	fm, _ := sealFrame(nil, kindManifest, 0, seq, mb, e.comp, aead)
	fe, _ := sealFrame(nil, kindEnd, 0, seq+1, nil, nil, aead)
	if _, err := sink.Write(append(fm, fe...)); err != nil {
		return fmt.Errorf("snapshot %s: write manifest: %w", m.ID, err)
	}
	return nil
}

// checkSourceSizes checks that each view wrote as many bytes as it reported.
func checkSourceSizes(m *Manifest) error {
	for _, s := range m.Sources {
		var n int64
		for _, c := range s.Chunks {
			n += int64(c.RawBytes)
		}
		if n != s.RawBytes {
			return fmt.Errorf("snapshot %s: source %q: view reported %d bytes but wrote %d", m.ID, s.Name, s.RawBytes, n)
		}
	}
	return nil
}

func writeView(name string, v View, w io.Writer) (n int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("view of %q panicked while writing: %v", name, r)
		}
	}()
	return v.WriteTo(w)
}

// chunkWriter cuts one source's bytes into chunks of size bytes for the
// pipeline.
type chunkWriter struct {
	p      *pipeline
	source uint16
	size   int
	buf    []byte
}

func (w *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		take := min(w.size-len(w.buf), len(b))
		w.buf = append(w.buf, b[:take]...)
		b = b[take:]
		if len(w.buf) == w.size {
			if err := w.flush(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// lend, giveBack and flushAt make w a [bufferLender]: a Map's view encodes
// its entries straight into the chunk being filled.
func (w *chunkWriter) lend() []byte { return w.buf }
func (w *chunkWriter) flushAt() int { return w.size }

func (w *chunkWriter) giveBack(b []byte) ([]byte, error) {
	w.buf = b
	for len(w.buf) >= w.size {
		// The bytes past the chunk go to a fresh buffer, the chunk to
		// the pipeline.
		chunk, rest := w.buf[:w.size], w.buf[w.size:]
		w.buf = append(w.p.buffer(), rest...)
		if err := w.p.submit(w.source, chunk); err != nil {
			return w.buf, err
		}
	}
	return w.buf, nil
}

// flush hands the buffered chunk to the pipeline, which owns it from then.
func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	chunk := w.buf
	w.buf = w.p.buffer()
	return w.p.submit(w.source, chunk)
}

// checkSourceNames refuses names that would be confused in reports and
// logs: control characters, invalid UTF-8, more than 256 bytes, or two
// names equal but for case.
func checkSourceNames(sorted []string) error {
	folded := make(map[string]string, len(sorted))
	for _, name := range sorted {
		if len(name) > 256 || !utf8.ValidString(name) {
			return fmt.Errorf("snapshot: New: source name %q must be valid UTF-8 of at most 256 bytes", name)
		}
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return fmt.Errorf("snapshot: New: source name %q has a control character", name)
		}
		key := strings.ToLower(name)
		if other, ok := folded[key]; ok {
			return fmt.Errorf("snapshot: New: source names %q and %q collide (they differ only in case)", other, name)
		}
		folded[key] = name
	}
	return nil
}

// checkDistinctSources refuses one source registered under two names: its
// Pauser would be paused twice in one cut and wait for itself.
func checkDistinctSources(sorted []string, sources map[string]Source) error {
	seen := make(map[Source]string, len(sorted))
	for _, name := range sorted {
		src := sources[name]
		if !reflect.TypeOf(src).Comparable() {
			continue
		}
		if other, ok := seen[src]; ok {
			return fmt.Errorf("snapshot: New: sources %q and %q are the same object; register it once", other, name)
		}
		seen[src] = name
	}
	return nil
}
