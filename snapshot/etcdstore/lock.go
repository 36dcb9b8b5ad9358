package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/updraft-dev/updraft/snapshot"
)

func (s *Store) lockPrefix(name string) string { return s.prefix + "l/" + name }
func (s *Store) holderKey(name string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%sh/%s/%x", s.prefix, name, int64(lease))
}

// Lock takes the lock name for holder without waiting, across every
// process and machine that uses this etcd cluster with the same prefix. It
// is a go.etcd.io/etcd/client/v3/concurrency mutex (TryLock) in a session
// of its own, whose lease lasts [Options.LeaseTTL] ([DefaultLeaseTTL], 60s,
// by default) and is kept alive while this process runs: if the holder's
// process dies, or loses the cluster, its lock expires within LeaseTTL.
//
// The holder is written under a key attached to the same lease before the
// mutex is tried, so while another holder has the lock the error matches
// [snapshot.ErrLocked] and names it. unlock releases the mutex and ends the
// session; it is idempotent.
func (s *Store) Lock(ctx context.Context, name, holder string) (unlock func(context.Context) error, err error) {
	const fn = "etcdstore: Lock"
	if err := snapshot.CheckLockArgs(fn, name, holder); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", fn, name, err)
	}
	// The session outlives ctx: its keep-alive runs until unlock.
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int(s.ttl/time.Second)), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("%s %q: start session: %w", fn, name, err)
	}
	fail := func(err error) (func(context.Context) error, error) {
		sess.Close() // revokes the lease: the holder key goes with it
		return nil, err
	}
	if _, err := s.cli.Put(ctx, s.holderKey(name, sess.Lease()), holder, clientv3.WithLease(sess.Lease())); err != nil {
		return fail(fmt.Errorf("%s %q: record holder: %w", fn, name, err))
	}
	mu := concurrency.NewMutex(sess, s.lockPrefix(name))
	if err := mu.TryLock(ctx); err != nil {
		if errors.Is(err, concurrency.ErrLocked) {
			return fail(snapshot.LockedError(fn, name, s.lockHolder(ctx, name)))
		}
		return fail(fmt.Errorf("%s %q: %w", fn, name, err))
	}
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			uerr := mu.Unlock(ctx)
			cerr := sess.Close()
			if e := errors.Join(uerr, cerr); e != nil {
				err = fmt.Errorf("etcdstore: unlock %q (the lock expires with its lease in any case): %w", name, e)
			}
		})
		return err
	}, nil
}

// lockHolder returns who holds the lock name, as its holder wrote it, or ""
// when it cannot tell (the holder let go in the meantime).
func (s *Store) lockHolder(ctx context.Context, name string) string {
	resp, err := s.cli.Get(ctx, s.lockPrefix(name)+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	owner := string(resp.Kvs[0].Key)
	lease := owner[strings.LastIndexByte(owner, '/')+1:]
	h, err := s.cli.Get(ctx, s.prefix+"h/"+name+"/"+lease)
	if err != nil || len(h.Kvs) == 0 {
		return ""
	}
	return string(h.Kvs[0].Value)
}
