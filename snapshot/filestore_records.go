package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// recordsDir is the subdirectory of a [FileStore]'s directory that holds
// records, one file per record named after it. A record's temporary file
// starts with '.', which no record name does.
const recordsDir = "records"

func (s *FileStore) recordPath(name string) string {
	return filepath.Join(s.dir, recordsDir, name)
}

// PutRecord stores data as the record name, atomically and durably: it
// writes a temporary file in the records subdirectory, fsyncs it, renames
// it over the record and fsyncs the directory, so after a crash the record
// is either the old one or the new one. Records are never listed as
// snapshots. A crash before the rename leaves a temporary file (its name
// starts with '.'), which GetRecord ignores.
func (s *FileStore) PutRecord(ctx context.Context, name string, data []byte) error {
	const fn = "snapshot: filestore PutRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	if err := s.ensureRecordsDir(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	if err := writeFileDurably(filepath.Join(s.dir, recordsDir), name, data); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	return nil
}

// GetRecord returns the record name, or an error matching [ErrNotFound].
func (s *FileStore) GetRecord(ctx context.Context, name string) ([]byte, error) {
	const fn = "snapshot: filestore GetRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	b, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %q: %w", fn, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	return b, nil
}

// DeleteRecord removes the record name durably (the directory is fsynced);
// a missing record is not an error.
func (s *FileStore) DeleteRecord(ctx context.Context, name string) error {
	const fn = "snapshot: filestore DeleteRecord"
	if err := CheckRecordName(fn, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	err := os.Remove(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	if err := syncDir(filepath.Join(s.dir, recordsDir)); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	return nil
}

// ensureRecordsDir creates the records subdirectory if it is missing and
// fsyncs the store's directory so that it survives a crash.
func (s *FileStore) ensureRecordsDir() error {
	dir := filepath.Join(s.dir, recordsDir)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(s.dir)
}

// writeFileDurably replaces dir/name with data: temporary file, fsync,
// rename, fsync of dir.
func writeFileDurably(dir, name string, data []byte) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+name+tempMarker+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}
