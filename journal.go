package updraft

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/snapshot"
)

// The journal is written ahead, as a database writes its log: before a
// step changes anything, what undoes it is durable in the JournalStore.
// One record holds the whole update; each write replaces it atomically.
const (
	// JournalRecord is the name of the journal's record in the store.
	JournalRecord = "updraft-journal"
	// UpdateLock is the name of the cross-process update lock.
	UpdateLock = "updraft-update"
	// journalVersion is the version this code writes and the newest it reads.
	journalVersion = 1
)

// Heading says where an update is going; Resume finishes it that way.
type Heading string

// Headings of an update in the journal.
const (
	// HeadingForward: the update is being prepared or applied; a crash now
	// is finished by rolling back.
	HeadingForward Heading = "forward"
	// HeadingCommit: a passing validation was recorded; Resume commits.
	HeadingCommit Heading = "commit"
	// HeadingRollback: the update or its validation failed; Resume rolls back.
	HeadingRollback Heading = "rollback"
)

// journalEntry is the durable state of one update.
type journalEntry struct {
	Version int    `json:"version"`
	Update  string `json:"update"`
	Holder  string `json:"holder"`
	// Process identifies the Orchestrator that wrote the journal; a
	// Resume in another one knows that the live critical state died with
	// that process.
	Process string    `json:"process,omitempty"`
	Started time.Time `json:"started"`
	Until   time.Time `json:"until"`
	Phase   Phase     `json:"phase"`   // the last phase begun
	Heading Heading   `json:"heading"` // where the update is going

	ApplyStarted  bool `json:"applyStarted,omitempty"`
	ApplyFinished bool `json:"applyFinished,omitempty"`
	Validated     bool `json:"validated,omitempty"`

	// Snapshot is the id of the pre-update snapshot, once it is committed.
	Snapshot string `json:"snapshot,omitempty"`
	// Device is the device's undo record, journaled before it changes anything.
	Device *deviceEntry `json:"device,omitempty"`
	// Lease is the migration lease, journaled before anything moves.
	Lease *leaseEntry `json:"lease,omitempty"`
	// Degraded are the functions reduced for the window, journaled before
	// they are reduced.
	Degraded []degradedEntry `json:"degraded,omitempty"`
	// Done lists the compensations and roll-back steps already finished.
	Done []Phase `json:"done,omitempty"`
}

type deviceEntry struct {
	// Journaled says the device implements the durable-undo interface; an
	// Apply of a device that does not is recorded as owed, with Record nil.
	Journaled bool   `json:"journaled"`
	Type      string `json:"type"`             // the device's Go type, for the report
	Record    []byte `json:"record,omitempty"` // the driver's undo record
}

type leaseEntry struct {
	ID        string   `json:"id"`
	Functions []string `json:"functions"`
}

type degradedEntry struct {
	Function string       `json:"function"`
	Mode     degrade.Mode `json:"mode"`
	Until    time.Time    `json:"until"`
}

func (e *journalEntry) done(p Phase) bool { return slices.Contains(e.Done, p) }

// journal writes one update's entry to the store.
type journal struct {
	store JournalStore
	entry journalEntry
}

// write applies change to the entry and makes it durable.
func (j *journal) write(ctx context.Context, change func(*journalEntry)) error {
	change(&j.entry)
	data, err := json.Marshal(j.entry)
	if err != nil {
		return fmt.Errorf("updraft: journal: encode: %w", err)
	}
	if err := guard("JournalStore.PutRecord", func() error {
		return j.store.PutRecord(context.WithoutCancel(ctx), JournalRecord, data)
	}); err != nil {
		return fmt.Errorf("updraft: journal: write: %w", err)
	}
	return nil
}

// markDone records that compensation p has finished.
func (j *journal) markDone(ctx context.Context, p Phase) error {
	return j.write(ctx, func(e *journalEntry) {
		if !e.done(p) {
			e.Done = append(e.Done, p)
		}
	})
}

// finish removes the entry: the update is over, nothing is owed.
func (j *journal) finish(ctx context.Context) error {
	if err := guard("JournalStore.DeleteRecord", func() error {
		return j.store.DeleteRecord(context.WithoutCancel(ctx), JournalRecord)
	}); err != nil {
		return fmt.Errorf("updraft: journal: delete: %w", err)
	}
	return nil
}

// readJournal returns the store's unfinished update, or nil when there is
// none. A journal that cannot be read as it is gives an error wrapping
// ErrBadJournal that says what the operator can do.
func readJournal(ctx context.Context, store JournalStore) (*journalEntry, error) {
	var data []byte
	err := guard("JournalStore.GetRecord", func() (err error) {
		data, err = store.GetRecord(ctx, JournalRecord)
		return err
	})
	switch {
	case errors.Is(err, snapshot.ErrNotFound):
		return nil, nil
	case errors.Is(err, snapshot.ErrCorrupt):
		return nil, fmt.Errorf("%w: record %q is damaged (%v): nothing was changed; compare the machine with the last report, undo by hand what it left, then delete the record", ErrBadJournal, JournalRecord, err)
	case err != nil:
		return nil, fmt.Errorf("updraft: journal: read: %w", err)
	}
	return decodeJournal(data)
}

// decodeJournal parses a journal record and checks that it can be resumed
// by this version.
func decodeJournal(data []byte) (*journalEntry, error) {
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: record %q is not a journal (%v): nothing was changed; inspect it, undo by hand what the update left, then delete the record", ErrBadJournal, JournalRecord, err)
	}
	if probe.Version > journalVersion {
		return nil, fmt.Errorf("%w: record %q was written by a newer updraft (journal version %d, this one reads up to %d): nothing was changed; run Resume from the newer version", ErrBadJournal, JournalRecord, probe.Version, journalVersion)
	}
	if probe.Version < 1 {
		return nil, fmt.Errorf("%w: record %q has journal version %d: nothing was changed; inspect it, undo by hand what the update left, then delete the record", ErrBadJournal, JournalRecord, probe.Version)
	}
	var e journalEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: record %q does not decode (%v): nothing was changed; inspect it, undo by hand what the update left, then delete the record", ErrBadJournal, JournalRecord, err)
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%w: record %q: %v: nothing was changed; inspect it, undo by hand what the update left, then delete the record", ErrBadJournal, JournalRecord, err)
	}
	return &e, nil
}

// check refuses entries no update of this version writes.
func (e *journalEntry) check() error {
	if e.Update == "" {
		return errors.New("no update id")
	}
	switch e.Heading {
	case HeadingForward, HeadingCommit, HeadingRollback:
	default:
		return fmt.Errorf("unknown heading %q", e.Heading)
	}
	if e.Heading == HeadingCommit && !e.Validated {
		return errors.New("heading commit without a recorded passing validation")
	}
	if e.ApplyFinished && !e.ApplyStarted {
		return errors.New("Apply finished but never started")
	}
	if e.Lease != nil && e.Lease.ID == "" {
		return errors.New("lease without an id")
	}
	for _, d := range e.Degraded {
		if d.Function == "" {
			return errors.New("degraded entry without a function")
		}
	}
	return nil
}

// newUpdateID returns a fresh id that sorts by time: 20060102T150405Z-hex.
func newUpdateID(now time.Time) string {
	return now.UTC().Format("20060102T150405Z") + "-" + randomHex(6)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
