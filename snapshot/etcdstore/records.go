package etcdstore

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/updraft-dev/updraft/snapshot"
)

// MaxRecordBytes is the largest record PutRecord accepts: etcd refuses a
// request over 1.5 MiB by default, and the key and framing need room.
const MaxRecordBytes = MaxChunkBytes

// ErrTooLarge: a record is larger than [MaxRecordBytes].
var ErrTooLarge = errors.New("etcdstore: record too large")

func (s *Store) recordKey(name string) string { return s.prefix + "r/" + name }

// PutRecord stores data as the record name in one committed transaction
// (etcd has it on a quorum's disks when PutRecord returns), atomically.
// Records live under their own key prefix and are never listed as
// snapshots. A record over [MaxRecordBytes] is refused with an error
// matching [ErrTooLarge].
func (s *Store) PutRecord(ctx context.Context, name string, data []byte) error {
	const fn = "etcdstore: PutRecord"
	if err := snapshot.CheckRecordName(fn, name); err != nil {
		return err
	}
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("%s %q: %d bytes is over MaxRecordBytes (%d; etcd refuses requests over 1.5 MiB): %w", fn, name, len(data), MaxRecordBytes, ErrTooLarge)
	}
	if _, err := s.cli.Txn(ctx).Then(clientv3.OpPut(s.recordKey(name), string(data))).Commit(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	return nil
}

// GetRecord returns the record name, or an error matching
// [snapshot.ErrNotFound]. The read is linearizable.
func (s *Store) GetRecord(ctx context.Context, name string) ([]byte, error) {
	const fn = "etcdstore: GetRecord"
	if err := snapshot.CheckRecordName(fn, name); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.recordKey(name))
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%s %q: %w", fn, name, snapshot.ErrNotFound)
	}
	return resp.Kvs[0].Value, nil
}

// DeleteRecord removes the record name in a committed transaction; a
// missing record is not an error.
func (s *Store) DeleteRecord(ctx context.Context, name string) error {
	const fn = "etcdstore: DeleteRecord"
	if err := snapshot.CheckRecordName(fn, name); err != nil {
		return err
	}
	if _, err := s.cli.Txn(ctx).Then(clientv3.OpDelete(s.recordKey(name))).Commit(); err != nil {
		return fmt.Errorf("%s %q: %w", fn, name, err)
	}
	return nil
}
