package snapshot

import (
	"context"
	"fmt"
	"io"
)

// Store keeps snapshots as opaque byte streams named by ID. Implementations:
// [FileStore] (the default), [MemStore] (tests, examples) and
// snapshot/etcdstore (highly available). All methods are safe for concurrent
// use.
//
// A snapshot becomes visible to Open and List only when its Sink's Close
// returns nil, and then entirely: a reader never sees a partial snapshot.
type Store interface {
	// Create starts a new snapshot called id. The Sink's writes are bound
	// by ctx. It fails if id is invalid (see [ValidID]) or already exists.
	Create(ctx context.Context, id string) (Sink, error)
	// Open returns the committed snapshot id for reading, or an error
	// matching [ErrNotFound]. The reader's reads are bound by ctx. A
	// reader that finds the bytes damaged returns an error matching
	// [ErrCorrupt] instead of io.EOF.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// List returns the IDs of committed snapshots, oldest first.
	List(ctx context.Context) ([]string, error)
	// Delete removes a committed snapshot; deleting a missing one returns
	// an error matching [ErrNotFound].
	Delete(ctx context.Context, id string) error
}

// Sink receives one snapshot's bytes. Close commits it atomically (and
// applies the store's retention); Cancel discards it. Exactly one of them
// should be called; calling either again is harmless.
type Sink interface {
	io.WriteCloser
	// Cancel abandons the snapshot; nothing becomes visible.
	Cancel() error
}

// ValidID reports whether id can name a snapshot in every store: 1 to 128
// characters from [A-Za-z0-9._-], not starting with '.'.
func ValidID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("snapshot: id %q must be 1 to 128 characters", id)
	}
	if id[0] == '.' {
		return fmt.Errorf("snapshot: id %q must not start with '.'", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("snapshot: id %q has character %q at %d; allowed are [A-Za-z0-9._-]", id, c, i)
		}
	}
	return nil
}

// selfChecking is implemented by a reader a [Store]'s Open returns when the
// store checksums the whole content itself, as [FileStore] does. A reader
// that checks every byte on its own, as [Engine] does (the header's and
// every frame's checksum, and that nothing follows the end frame), turns
// the store's checksum off: it would be a second pass over the same bytes
// (3% of a restore's CPU time with S2 chunks, 8% with uncompressed ones,
// by CPU profile). A damaged footer checksum over intact content is then
// not an error: the content is what the engine verifies.
type selfChecking interface {
	skipContentChecksum()
}

// skipStoreChecksum turns off r's own checksum, if it has one (see
// [selfChecking]).
func skipStoreChecksum(r io.Reader) {
	if sc, ok := r.(selfChecking); ok {
		sc.skipContentChecksum()
	}
}
