package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Load reads the snapshot id from the store, verifies every byte of it
// (structure, checksums, authentication, decompression, the manifest's
// chunk list) and returns its manifest. It does not touch any source.
func (e *Engine) Load(ctx context.Context, id string) (Manifest, error) {
	return e.load(ctx, id, nil, nil)
}

// load is Load; a non-nil spool also keeps the verified data frames (see
// [rawSpool]), and a non-nil st is fed its sources' frames instead.
func (e *Engine) load(ctx context.Context, id string, spool *rawSpool, st *staging) (Manifest, error) {
	if err := ctx.Err(); err != nil {
		return Manifest{}, fmt.Errorf("snapshot: load %s: %w", id, err)
	}
	if err := ValidID(id); err != nil {
		return Manifest{}, err
	}
	rc, err := e.store.Open(ctx, id)
	if err != nil {
		return Manifest{}, fmt.Errorf("snapshot: load %s: %w", id, err)
	}
	defer rc.Close()
	skipStoreChecksum(rc) // verify checks every byte
	m, err := verify(ctx, rc, id, e.opts.Key, spool, st, &e.buffers)
	if err != nil {
		return Manifest{}, err
	}
	if m.ID != id {
		// A valid snapshot stored under another name: refuse the replay.
		return Manifest{}, fmt.Errorf("snapshot %s: the store's data is snapshot %s: %w", id, m.ID, ErrCorrupt)
	}
	return m, nil
}

// Latest returns the manifest of the newest snapshot in the store that
// verifies, or an error matching [ErrNotFound] when there is none. Snapshots
// that fail verification are skipped and logged.
func (e *Engine) Latest(ctx context.Context) (Manifest, error) {
	ids, err := e.store.List(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("snapshot: latest: %w", err)
	}
	for i := len(ids) - 1; i >= 0; i-- {
		m, err := e.Load(ctx, ids[i])
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return Manifest{}, fmt.Errorf("snapshot: latest: %w", ctx.Err())
		}
		e.log.Warn("snapshot: skipping snapshot that does not verify", "id", ids[i], "err", err)
	}
	return Manifest{}, fmt.Errorf("snapshot: latest: no snapshot that verifies: %w", ErrNotFound)
}

// Verify reads a whole snapshot from r and checks it: header, every frame's
// checksum and (with key) authentication, decompression, the manifest, that
// the manifest lists exactly the chunks read, and that nothing follows the
// end. name is used in errors. It returns the snapshot's manifest.
func Verify(ctx context.Context, r io.Reader, name string, key []byte) (Manifest, error) {
	return verify(ctx, r, name, key, nil, nil, nil)
}

func verify(ctx context.Context, r io.Reader, name string, key []byte, spool *rawSpool, st *staging, pool *bufferPool) (Manifest, error) {
	d, err := newDecoder(r, name, key)
	if err != nil {
		return Manifest{}, err
	}
	defer d.close()
	frames := d.stream(runtime.GOMAXPROCS(0), pool)
	defer frames.close()
	var seen []SourceInfo // chunk lists as read
	var m Manifest
	for {
		if err := ctx.Err(); err != nil {
			return Manifest{}, fmt.Errorf("snapshot %s: verify: %w", name, err)
		}
		f, err := frames.next()
		if err != nil {
			return Manifest{}, err
		}
		switch f.kind {
		case kindData:
			if int(f.source) < len(seen)-1 || int(f.source) > len(seen)+(1<<16) {
				return Manifest{}, d.corrupt(f.offset, "source %d after source %d", f.source, len(seen)-1)
			}
			for int(f.source) >= len(seen) {
				seen = append(seen, SourceInfo{})
			}
			s := &seen[f.source]
			s.Chunks = append(s.Chunks, f.info)
			if !st.feed(f, frames) {
				spool.keep(f, frames)
			}
			s.RawBytes += int64(f.info.RawBytes)
			s.StoredBytes += int64(f.info.StoredBytes)
		case kindManifest:
			if m.ID != "" || m.FormatVersion != 0 {
				return Manifest{}, d.corrupt(f.offset, "second manifest")
			}
			if m, err = decodeManifest(f.raw); err != nil {
				return Manifest{}, fmt.Errorf("snapshot %s: frame %d at offset %d: %w", name, f.seq, f.offset, err)
			}
			if err := checkManifest(m, name, seen, d.hdr); err != nil {
				return Manifest{}, err
			}
		case kindEnd:
			if m.FormatVersion == 0 {
				return Manifest{}, d.corrupt(f.offset, "end frame before any manifest")
			}
			if spool != nil {
				spool.complete = true
			}
			return m, nil
		}
	}
}

// checkManifest compares a decoded manifest with what was read.
func checkManifest(m Manifest, name string, seen []SourceInfo, hdr header) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("snapshot %s: manifest: %s: %w", name, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if m.FormatVersion != int(hdr.version) {
		return bad("format version %d, header says %d", m.FormatVersion, hdr.version)
	}
	if err := ValidID(m.ID); err != nil {
		return bad("%v", err)
	}
	if m.Encrypted != hdr.encrypted {
		return bad("encrypted=%v, header says %v", m.Encrypted, hdr.encrypted)
	}
	if len(m.Sources) < len(seen) {
		return bad("lists %d sources, data holds %d", len(m.Sources), len(seen))
	}
	names := make(map[string]bool, len(m.Sources))
	for i, s := range m.Sources {
		if s.Name == "" || names[s.Name] {
			return bad("source %d has an empty or duplicate name %q", i, s.Name)
		}
		names[s.Name] = true
		var got SourceInfo
		if i < len(seen) {
			got = seen[i]
		}
		if len(s.Chunks) != len(got.Chunks) {
			return bad("source %q lists %d chunks, data holds %d", s.Name, len(s.Chunks), len(got.Chunks))
		}
		for j, c := range s.Chunks {
			if c != got.Chunks[j] {
				return bad("source %q chunk %d is %+v, data holds %+v", s.Name, j, c, got.Chunks[j])
			}
		}
		if s.RawBytes != got.RawBytes || s.StoredBytes != got.StoredBytes {
			return bad("source %q sizes %d/%d, data holds %d/%d", s.Name, s.RawBytes, s.StoredBytes, got.RawBytes, got.StoredBytes)
		}
	}
	return nil
}

// Restore implements [Snapshotter]. It first verifies the whole snapshot
// m.ID ([Engine.Load]) and checks its sources and app version against the
// engine's; only then does it hand each source its bytes, in manifest
// order. When the snapshot's raw state fits in [Options.RestoreMemory],
// verification keeps the verified chunks in memory and the sources are fed
// from them; otherwise the snapshot is read a second time, and each chunk
// of that read is checked against the verified manifest (a store whose
// bytes change in between is caught, matching [ErrCorrupt]). From m, only
// m.ID is used, and m's sizes as a hint of whether the snapshot fits; the
// manifest stored in the snapshot is authoritative.
//
// Sources implementing [Stager] ([Map], [ShardedMap]) are fed during
// verification instead: each builds its new state aside, and Restore
// commits them all, in name order, after the other sources were restored;
// a verification failure, a failing Stage or a failing plain source drops
// them unchanged. A snapshot of another app version is restored through
// every source's Restore.
//
// Restore stops at the first plain source that fails; plain sources before
// it have been restored. It does not pause the sources: each source's
// Restore should swap its state in atomically ([Map] does).
//
// Named sources restrict the restore to them (the whole snapshot is
// still verified); none means every source. A name that is not
// registered is refused before anything is read.
func (e *Engine) Restore(ctx context.Context, m Manifest, sources ...string) (err error) {
	want, err := e.wanted(sources)
	if err != nil {
		return err
	}
	start := time.Now()
	var restored int64
	defer func() { e.metrics.observe("restore", start, restored, err) }()
	var spool *rawSpool
	// m's sizes, when the caller has them, are only a hint: a snapshot
	// they say is too large is not spooled only to be dropped half way.
	if e.restoreMemory > 0 && e.plainRawBytes(m) <= e.restoreMemory {
		spool = &rawSpool{budget: e.restoreMemory}
	}
	st := e.stage(ctx, want)
	defer st.abandon() // drops whatever was not committed
	stored, err := e.load(ctx, m.ID, spool, st)
	if err != nil {
		return fmt.Errorf("snapshot: restore: %w", err)
	}
	upgrade, err := e.checkRestorable(stored)
	if err != nil {
		return err
	}
	if st != nil && !st.matches(e.names, stored, upgrade) {
		// The staging guessed the wrong sources (an older snapshot): drop
		// it and feed every source from a second read.
		st.abandon()
		st, spool = nil, nil
	}
	if st != nil {
		if err := st.finish(); err != nil {
			return fmt.Errorf("snapshot: restore %s: %w", m.ID, err)
		}
	}
	var frames frameSource
	switch {
	case st.stagesAll(len(stored.Sources)):
		// Every source is staged: nothing to read again.
		frames = &rawSpool{}
	case spool != nil && spool.complete && !spool.over:
		// Every data frame is in memory, verified: no second read.
		frames = spool
	default:
		spool = nil // let the GC have what was kept
		rc, err := e.store.Open(ctx, m.ID)
		if err != nil {
			return fmt.Errorf("snapshot: restore %s: %w", m.ID, err)
		}
		defer rc.Close()
		skipStoreChecksum(rc) // every frame's checksum is checked again
		d, err := newDecoder(rc, m.ID, e.opts.Key)
		if err != nil {
			return fmt.Errorf("snapshot: restore: %w", err)
		}
		defer d.close()
		// Every byte was verified above, raw checksums included. This
		// pass only has to tell that it reads the same bytes: each frame's
		// stored checksum (and seal) must match the verified manifest's,
		// so the raw checksum is not computed a second time.
		d.skipRawCRC = true
		stream := d.stream(e.workers, &e.buffers)
		defer stream.close()
		frames = stream
	}
	for i, s := range stored.Sources {
		sr := &sourceReader{frames: frames, id: m.ID, source: uint16(i), name: s.Name, chunks: s.Chunks}
		if !want(s.Name) {
			if err := sr.drain(); err != nil {
				return fmt.Errorf("snapshot: restore %s: source %q: %w", m.ID, s.Name, err)
			}
			continue
		}
		if st.staged(i) {
			// Already staged; a second read skips its chunks (and still
			// checks them against the verified manifest).
			if _, fromMemory := frames.(*rawSpool); !fromMemory {
				if err := sr.drain(); err != nil {
					return fmt.Errorf("snapshot: restore %s: source %q: %w", m.ID, s.Name, err)
				}
			}
			continue
		}
		var r io.Reader = sr
		if upgrade {
			if r, err = e.opts.Upgrade(ctx, stored, s.Name, r); err != nil {
				return fmt.Errorf("snapshot: restore %s: source %q: upgrade from app version %q: %w", m.ID, s.Name, stored.AppVersion, err)
			}
		}
		if err := restoreSource(ctx, s.Name, e.sources[s.Name], r); err != nil {
			return fmt.Errorf("snapshot: restore %s: %w", m.ID, err)
		}
		if err := sr.drain(); err != nil {
			return fmt.Errorf("snapshot: restore %s: source %q: %w", m.ID, s.Name, err)
		}
		e.log.Debug("snapshot: source restored", "id", m.ID, "source", s.Name, "raw_bytes", s.RawBytes)
	}
	if st != nil {
		if err := st.commitAll(); err != nil {
			return fmt.Errorf("snapshot: restore %s: %w", m.ID, err)
		}
		e.log.Debug("snapshot: staged sources committed", "id", m.ID, "sources", len(st.order))
	}
	for _, s := range stored.Sources {
		if want(s.Name) {
			restored += s.RawBytes
		}
	}
	e.log.Info("snapshot: restored", "id", m.ID, "raw_bytes", restored, "sources", len(sources))
	return nil
}

// wanted returns whether a source is to be restored, or an error naming
// a source that is not registered.
func (e *Engine) wanted(sources []string) (func(string) bool, error) {
	if len(sources) == 0 {
		return func(string) bool { return true }, nil
	}
	set := make(map[string]bool, len(sources))
	for _, name := range sources {
		if _, ok := e.sources[name]; !ok {
			return nil, fmt.Errorf("snapshot: restore: source %q is not registered (registered: %v): %w", name, e.names, ErrSourceMismatch)
		}
		set[name] = true
	}
	return func(name string) bool { return set[name] }, nil
}

// plainRawBytes is how many of m's raw bytes go to sources that are not
// [Stager]s: what Restore would keep in memory. m's sizes are a hint.
func (e *Engine) plainRawBytes(m Manifest) int64 {
	var n int64
	for _, s := range m.Sources {
		if _, staged := e.sources[s.Name].(Stager); !staged {
			n += s.RawBytes
		}
	}
	return n
}

// checkRestorable compares a verified manifest with the engine's sources
// and app version; upgrade reports whether Options.Upgrade must convert.
func (e *Engine) checkRestorable(m Manifest) (upgrade bool, err error) {
	upgrade = m.AppVersion != e.opts.AppVersion
	if upgrade && e.opts.Upgrade == nil {
		return false, fmt.Errorf("snapshot: restore %s: made by app version %q, this is %q, and Options.Upgrade is not set: %w", m.ID, m.AppVersion, e.opts.AppVersion, ErrAppVersion)
	}
	inSnapshot := make(map[string]bool, len(m.Sources))
	for _, s := range m.Sources {
		inSnapshot[s.Name] = true
		if _, ok := e.sources[s.Name]; !ok {
			return false, fmt.Errorf("snapshot: restore %s: snapshot holds source %q, which is not registered: %w", m.ID, s.Name, ErrSourceMismatch)
		}
	}
	for _, name := range e.names {
		if inSnapshot[name] {
			continue
		}
		if !upgrade {
			return false, fmt.Errorf("snapshot: restore %s: registered source %q is not in the snapshot: %w", m.ID, name, ErrSourceMismatch)
		}
		e.log.Warn("snapshot: source is not in the older snapshot; left as it is", "id", m.ID, "source", name, "from_version", m.AppVersion)
	}
	return upgrade, nil
}

func restoreSource(ctx context.Context, name string, src Source, r io.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("source %q: restore panicked: %v", name, p)
		}
	}()
	if err := src.Restore(ctx, r); err != nil {
		return fmt.Errorf("source %q: restore: %w", name, err)
	}
	return nil
}

// sourceReader streams one source's raw bytes out of a decoder, checking
// each chunk against the verified manifest's list.
type sourceReader struct {
	frames frameSource
	id     string // the snapshot's, for errors
	source uint16
	name   string
	chunks []ChunkInfo // not yet read
	rest   []byte
	eof    bool
	err    error
}

func (r *sourceReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.eof {
			return 0, io.EOF
		}
		f, err := r.frames.peek()
		if err != nil {
			r.err = err
			return 0, err
		}
		if f.kind != kindData || f.source != r.source {
			if len(r.chunks) != 0 {
				r.err = f.corrupt(r.id, "source %q ends %d chunks early (the snapshot changed while it was restored)", r.name, len(r.chunks))
				return 0, r.err
			}
			r.eof = true
			continue
		}
		if _, err := r.frames.next(); err != nil { // the peeked frame
			r.err = err
			return 0, err
		}
		if err := r.check(f); err != nil {
			r.err = err
			return 0, err
		}
		r.rest = f.raw
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// check compares a frame of the second pass with the verified manifest:
// a store whose bytes change between the passes is caught here.
func (r *sourceReader) check(f *frame) error {
	if len(r.chunks) == 0 {
		return f.corrupt(r.id, "source %q has more chunks than the verified manifest lists (the snapshot changed while it was restored)", r.name)
	}
	want := r.chunks[0]
	r.chunks = r.chunks[1:]
	if f.info.RawBytes != want.RawBytes || f.info.StoredBytes != want.StoredBytes || f.info.StoredCRC32C != want.StoredCRC32C {
		return f.corrupt(r.id, "source %q: chunk differs from the verified one (the snapshot changed while it was restored)", r.name)
	}
	return nil
}

// drain consumes what the source did not read, so the next source starts at
// its first chunk.
func (r *sourceReader) drain() error {
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// frameSource hands out verified frames in stream order: a [frameStream]
// reading the store again, or a [rawSpool] of what verification kept.
type frameSource interface {
	// next returns the next frame; its raw bytes are valid until the
	// following call to next or peek.
	next() (*frame, error)
	// peek returns the next frame without consuming it.
	peek() (*frame, error)
}

var (
	_ frameSource = (*frameStream)(nil)
	_ frameSource = (*rawSpool)(nil)
)

// rawSpool keeps the raw bytes of the data frames verification reads, up to
// budget bytes, so Restore can feed the sources without reading the
// snapshot a second time. Past the budget it drops everything (over) and
// Restore reads the store again: memory stays bounded whatever the
// snapshot's size. A nil *rawSpool keeps nothing.
type rawSpool struct {
	budget   int64
	used     int64
	frames   []*frame
	over     bool
	complete bool // verification reached the end frame
	pos      int
}

// keep keeps f, the frame frames handed out last, taking the buffer its
// raw bytes lie in from the stream (which would otherwise recycle it).
func (s *rawSpool) keep(f *frame, frames *frameStream) {
	if s == nil || s.over {
		return
	}
	if s.used+int64(len(f.raw)) > s.budget {
		s.over, s.frames, s.used = true, nil, 0
		return
	}
	frames.keepRaw(f)
	c := *f
	c.payload = nil
	s.used += int64(len(c.raw))
	s.frames = append(s.frames, &c)
}

// end stands for whatever follows the data frames.
var spoolEnd = &frame{kind: kindManifest}

func (s *rawSpool) peek() (*frame, error) {
	if s.pos >= len(s.frames) {
		return spoolEnd, nil
	}
	return s.frames[s.pos], nil
}

func (s *rawSpool) next() (*frame, error) {
	f, err := s.peek()
	if s.pos < len(s.frames) {
		s.frames[s.pos] = nil // the source has it: let the GC take it after
		s.pos++
	}
	return f, err
}
