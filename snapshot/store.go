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

// Records and locks: besides snapshots, [FileStore], [MemStore] and
// snapshot/etcdstore keep small named records (an update's journal, for
// instance) and non-blocking named locks. They have no interface of their
// own here: the consumer declares the methods it calls (the updraft
// package's JournalStore and Locker). Their contract:
//
//	PutRecord(ctx, name string, data []byte) error
//	    stores data under name atomically (a reader sees the old record or
//	    the new one, never a mix) and durably (on disk or committed to the
//	    cluster) before it returns.
//	GetRecord(ctx, name string) ([]byte, error)
//	    returns the record, or an error matching [ErrNotFound].
//	DeleteRecord(ctx, name string) error
//	    removes the record; a missing one is not an error.
//	Lock(ctx, name, holder string) (unlock func(context.Context) error, err error)
//	    takes the lock without waiting; while another holder has it, the
//	    error matches [ErrLocked] and names that holder.
//
// Records live apart from snapshots: List never returns them, and
// retention never removes them. Names follow [ValidID]'s rules.

// maxHolderBytes bounds a lock holder's description.
const maxHolderBytes = 256

// checkRecordName returns an error matching [ErrInvalidName] that names fn
// and field unless name follows [ValidID]'s rules.
func checkRecordName(fn, field, name string) error {
	if err := ValidID(name); err != nil {
		return fmt.Errorf("%s: %s %q is invalid (%v): %w", fn, field, name, err, ErrInvalidName)
	}
	return nil
}

// CheckLockArgs checks a Lock call's name (see [ValidID]) and holder (1 to
// 256 bytes, no control characters). The error, matching [ErrInvalidName],
// starts with fn and names the field. Stores outside this package use it so
// that every store accepts the same arguments.
func CheckLockArgs(fn, name, holder string) error {
	if err := checkRecordName(fn, "lock name", name); err != nil {
		return err
	}
	if holder == "" || len(holder) > maxHolderBytes {
		return fmt.Errorf("%s: holder %q must be 1 to %d bytes: %w", fn, holder, maxHolderBytes, ErrInvalidName)
	}
	for i := 0; i < len(holder); i++ {
		if holder[i] < 0x20 || holder[i] == 0x7f {
			return fmt.Errorf("%s: holder %q has control character %q at %d: %w", fn, holder, holder[i], i, ErrInvalidName)
		}
	}
	return nil
}

// CheckRecordName checks a record's name (see [ValidID]); the error,
// matching [ErrInvalidName], starts with fn and names the field.
func CheckRecordName(fn, name string) error { return checkRecordName(fn, "record name", name) }

// LockedError returns the error a Lock returns while holder has the lock
// called name: it matches [ErrLocked] and names the holder. fn starts it.
func LockedError(fn, name, holder string) error {
	if holder == "" {
		holder = "an unrecorded holder"
	} else {
		holder = fmt.Sprintf("%q", holder)
	}
	return fmt.Errorf("%s: lock %q is held by %s: %w", fn, name, holder, ErrLocked)
}
