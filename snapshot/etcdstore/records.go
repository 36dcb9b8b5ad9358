package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/updraft-dev/updraft/snapshot"
)

// MaxRecordBytes is the largest record PutRecord takes: etcd refuses
// requests over 1.5 MiB.
const MaxRecordBytes = MaxChunkBytes

func (s *Store) recordKey(name string) string { return s.prefix + "r/" + name }
func (s *Store) lockKey(name string) string   { return s.prefix + "l/" + name }
func (s *Store) holderKey(name string) string { return s.prefix + "h/" + name }

func recordArgs(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcdstore: %s %q: %w", op, name, err)
	}
	if err := snapshot.ValidRecordName(name); err != nil {
		return fmt.Errorf("etcdstore: %s: %w", op, err)
	}
	return nil
}

// PutRecord stores data under name; it is durable when it returns (etcd
// commits a put through its log on a quorum of members).
func (s *Store) PutRecord(ctx context.Context, name string, data []byte) error {
	if err := recordArgs(ctx, "put record", name); err != nil {
		return err
	}
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("etcdstore: put record %q: %d bytes, more than MaxRecordBytes (%d): etcd refuses requests over 1.5 MiB", name, len(data), MaxRecordBytes)
	}
	if _, err := s.cli.Put(ctx, s.recordKey(name), string(data)); err != nil {
		return fmt.Errorf("etcdstore: put record %q: %w", name, err)
	}
	return nil
}

// GetRecord returns the record name, or an error matching
// snapshot.ErrNotFound. The read is linearizable.
func (s *Store) GetRecord(ctx context.Context, name string) ([]byte, error) {
	if err := recordArgs(ctx, "get record", name); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.recordKey(name))
	if err != nil {
		return nil, fmt.Errorf("etcdstore: get record %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("etcdstore: record %q: %w", name, snapshot.ErrNotFound)
	}
	return resp.Kvs[0].Value, nil
}

// DeleteRecord removes the record name; a missing record is not an error.
func (s *Store) DeleteRecord(ctx context.Context, name string) error {
	if err := recordArgs(ctx, "delete record", name); err != nil {
		return err
	}
	if _, err := s.cli.Delete(ctx, s.recordKey(name)); err != nil {
		return fmt.Errorf("etcdstore: delete record %q: %w", name, err)
	}
	return nil
}

// Lock takes the lock name for holder across every process and machine
// using the cluster under this prefix, with an etcd mutex
// (go.etcd.io/etcd/client/v3/concurrency) in a session whose lease lasts
// Options.LeaseTTL: a holder that dies loses the lock when its lease
// expires, at most LeaseTTL later. Lock does not wait: while another
// holder has it, the error matches snapshot.ErrLocked and names the holder.
func (s *Store) Lock(ctx context.Context, name, holder string) (func(context.Context) error, error) {
	if err := recordArgs(ctx, "lock", name); err != nil {
		return nil, err
	}
	var sess *concurrency.Session
	var m *concurrency.Mutex
	// Two attempts: a holder whose name is already gone (its lease just
	// expired, or it is unlocking) leaves the lock free a moment later.
	for attempt := 0; ; attempt++ {
		var err error
		sess, err = concurrency.NewSession(s.cli, concurrency.WithTTL(int(s.ttl.Seconds())), concurrency.WithContext(context.WithoutCancel(ctx)))
		if err != nil {
			return nil, fmt.Errorf("etcdstore: lock %q: session: %w", name, err)
		}
		m = concurrency.NewMutex(sess, s.lockKey(name))
		err = m.TryLock(ctx)
		if err == nil {
			break
		}
		_ = sess.Close()
		if !errors.Is(err, concurrency.ErrLocked) {
			return nil, fmt.Errorf("etcdstore: lock %q: %w", name, err)
		}
		resp, gerr := s.cli.Get(ctx, s.holderKey(name))
		if gerr == nil && len(resp.Kvs) > 0 {
			return nil, fmt.Errorf("%w: %q is held by %q", snapshot.ErrLocked, name, resp.Kvs[0].Value)
		}
		if attempt == 1 {
			return nil, fmt.Errorf("%w: %q is held by a holder that has not named itself yet", snapshot.ErrLocked, name)
		}
	}
	if _, err := s.cli.Put(ctx, s.holderKey(name), holder, clientv3.WithLease(sess.Lease())); err != nil {
		_ = m.Unlock(context.WithoutCancel(ctx))
		_ = sess.Close()
		return nil, fmt.Errorf("etcdstore: lock %q: naming the holder: %w", name, err)
	}
	var once sync.Once
	var uerr error
	return func(ctx context.Context) error {
		once.Do(func() {
			_, derr := s.cli.Delete(ctx, s.holderKey(name))
			uerr = errors.Join(derr, m.Unlock(ctx), sess.Close())
			if uerr != nil {
				uerr = fmt.Errorf("etcdstore: unlock %q: %w", name, uerr)
			}
		})
		return uerr
	}, nil
}
