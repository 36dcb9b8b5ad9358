package snapshot

import (
	"context"
	"errors"
	"io"
	"time"
)

// Source is a piece of critical state the host registers with [New].
//
// The engine calls Capture while every source of the cut is paused (see
// [Pauser] and [Options.Pause]), so Capture must be cheap: take a view (an
// immutable root, a copy-on-write reference), do not serialise. The view is
// serialised afterwards, outside the pause, while the source keeps serving.
// Restore may be called at any time the host chooses; it should swap the new
// state in atomically. [Map] implements Source and [Pauser].
type Source interface {
	// Capture takes a consistent view of the state. It runs while every
	// source in the cut is paused, so it must be cheap (take a view, do not
	// serialise).
	Capture(ctx context.Context) (View, error)
	// Restore replaces the state with what r holds (bytes written by one of
	// this source's views). It must not keep r after returning.
	Restore(ctx context.Context, r io.Reader) error
}

// View is captured state, serialised outside the pause. WriteTo is called at
// most once, from one goroutine, while the source may be serving again; it
// must therefore read only what Capture froze.
type View interface {
	WriteTo(w io.Writer) (int64, error)
}

// Pauser is an optional interface a [Source] implements when it must stop
// its writers for its view to be consistent with the other sources of the
// cut. The engine pauses every Pauser (in source-name order), captures every
// source, then resumes them in reverse order; Resume is called exactly once
// for every successful Pause, even when a capture fails or panics.
type Pauser interface {
	// Pause blocks the source's writers. It returns when they are blocked,
	// or with ctx's error.
	Pause(ctx context.Context) error
	// Resume lets the writers continue.
	Resume()
}

// Stager is an optional interface a [Source] implements so that
// [Engine.Restore] reads a snapshot once and decodes it while verifying.
// The engine calls Stage with the source's bytes as verification reads them
// (Stage runs on its own goroutine, alongside verification); Stage builds
// the new state aside and returns a commit function that makes it visible.
// Only once the whole snapshot has verified (end frame, manifest, every
// checksum) and every Stage has returned without error does the engine call
// every commit, in source-name order. On any failure no commit is called
// and the staged state is dropped: the source is unchanged.
//
// Stage must not change what the source's readers see, and must stop (with
// an error) when r returns one or ctx ends: the bytes it reads are not yet
// verified. Commit must be cheap and must not fail (swap a pointer). A
// snapshot made by another app version (see [Options.Upgrade]) is restored
// through [Source.Restore] instead. [Map] and [ShardedMap] implement Stager.
type Stager interface {
	// Stage decodes r into new state without making it visible, and
	// returns the function that does.
	Stage(ctx context.Context, r io.Reader) (commit func(), err error)
}

// Snapshotter takes consistent snapshots of critical state and restores
// them. [*Engine] is the implementation; most callers want [New].
type Snapshotter interface {
	// Snapshot captures every source as one consistent cut, writes it to the
	// store and returns its manifest. The pause critical functions saw is in
	// [Manifest.Pause].
	Snapshot(ctx context.Context) (Manifest, error)
	// Restore verifies the whole snapshot m.ID names, then hands each
	// source its state. Nothing reaches a source's visible state if
	// verification fails ([Stager]s decode while it runs, but commit only
	// after it succeeded). Named sources restrict the restore to them;
	// none means every source.
	Restore(ctx context.Context, m Manifest, sources ...string) error
}

// Manifest describes one snapshot. It is written (authenticated, when a key
// is set) inside the snapshot itself, so a Manifest read back from the store
// by [Engine.Load] is as trustworthy as the data.
type Manifest struct {
	// ID names the snapshot in its [Store]; IDs sort in creation order.
	ID string
	// Created is when the cut was taken, from [Options.Clock].
	Created time.Time
	// AppVersion is [Options.AppVersion] of the engine that wrote it.
	AppVersion string
	// Pause is how long the sources were paused: what critical functions saw.
	Pause time.Duration
	// Sources lists each source in the order it is stored.
	Sources []SourceInfo
	// FormatVersion is the version of the byte format ([FormatVersion]).
	FormatVersion int
	// Encrypted reports whether the data is sealed with [Options.Key].
	Encrypted bool
	// Compression names the codec of the chunks: "s2", "zstd" or "none".
	Compression string
	// ChunkBytes is the largest uncompressed chunk size.
	ChunkBytes int
}

// SourceInfo describes one source inside a snapshot.
type SourceInfo struct {
	// Name is the name the source was registered under.
	Name string
	// RawBytes is the length of what its view wrote.
	RawBytes int64
	// StoredBytes is the length of its chunks as stored (compressed, sealed).
	StoredBytes int64
	// Chunks lists the source's chunks, in order.
	Chunks []ChunkInfo
}

// ChunkInfo describes one chunk of a source: its sizes and CRC-32C checksums
// of the raw (uncompressed) and the stored bytes.
type ChunkInfo struct {
	RawBytes     int    `json:"raw"`
	StoredBytes  int    `json:"stored"`
	RawCRC32C    uint32 `json:"rawcrc"`
	StoredCRC32C uint32 `json:"storedcrc"`
}

// RawBytes returns the total uncompressed size of all sources.
func (m Manifest) RawBytes() int64 {
	var n int64
	for _, s := range m.Sources {
		n += s.RawBytes
	}
	return n
}

// Errors callers branch on, checked with errors.Is.
var (
	// ErrNotFound: the store holds no snapshot with that ID.
	ErrNotFound = errors.New("snapshot: not found")
	// ErrCorrupt: the snapshot's bytes fail verification (checksum,
	// structure, authentication). The error names the region at fault.
	ErrCorrupt = errors.New("snapshot: corrupt")
	// ErrTruncated: the snapshot ends early. It also matches ErrCorrupt.
	ErrTruncated = errors.New("snapshot: truncated")
	// ErrKeyRequired: the snapshot is encrypted and no key was given.
	ErrKeyRequired = errors.New("snapshot: snapshot is encrypted and no key is set")
	// ErrWrongKey: the key does not open the snapshot.
	ErrWrongKey = errors.New("snapshot: wrong key")
	// ErrNotEncrypted: a key is set but the snapshot is not encrypted; it is
	// refused because anyone could have written it.
	ErrNotEncrypted = errors.New("snapshot: key is set but snapshot is not encrypted")
	// ErrFormatVersion: the snapshot was written in a byte format this
	// package does not read.
	ErrFormatVersion = errors.New("snapshot: unsupported format version")
	// ErrAppVersion: the snapshot was made by another app version and no
	// [Options.Upgrade] hook accepted it.
	ErrAppVersion = errors.New("snapshot: app version mismatch")
	// ErrSourceMismatch: the snapshot's sources and the registered sources
	// differ.
	ErrSourceMismatch = errors.New("snapshot: source mismatch")
	// ErrCapture: a source failed or panicked during the cut; the cut was
	// abandoned and every source resumed.
	ErrCapture = errors.New("snapshot: capture failed")
	// ErrSealed: a Sink was used after Close or Cancel.
	ErrSealed = errors.New("snapshot: sink already closed")
)
