package etcdstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/updraft-dev/updraft/snapshot"
)

func TestRecords(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	cli := c.client(t)
	store, err := New(ctx, cli, Options{Prefix: "rec/"})
	require.NoError(t, err)

	_, err = store.GetRecord(ctx, "journal")
	require.ErrorIs(t, err, snapshot.ErrNotFound)
	require.NoError(t, store.DeleteRecord(ctx, "journal"), "deleting a missing record is not an error")
	require.NoError(t, store.PutRecord(ctx, "journal", []byte("v1")))
	require.NoError(t, store.PutRecord(ctx, "journal", []byte("version two")))
	got, err := store.GetRecord(ctx, "journal")
	require.NoError(t, err)
	require.Equal(t, "version two", string(got))

	// A second client ("another machine") reads what the first committed.
	other, err := New(ctx, c.client(t), Options{Prefix: "rec/"})
	require.NoError(t, err)
	got, err = other.GetRecord(ctx, "journal")
	require.NoError(t, err)
	require.Equal(t, "version two", string(got))

	// Records are not snapshots.
	w, err := store.Create(ctx, "snap1")
	require.NoError(t, err)
	_, err = w.Write([]byte("state"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	ids, err := store.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"snap1"}, ids)

	// Up to MaxRecordBytes goes through in one request; more is refused
	// up front, naming the record and the limit, and changes nothing.
	big := []byte(strings.Repeat("x", MaxRecordBytes))
	require.NoError(t, store.PutRecord(ctx, "big", big))
	got, err = store.GetRecord(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, big, got)
	err = store.PutRecord(ctx, "big", append(big, 'y'))
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, `"big"`)
	require.ErrorContains(t, err, "MaxRecordBytes")
	got, err = store.GetRecord(ctx, "big")
	require.NoError(t, err)
	require.Len(t, got, MaxRecordBytes)

	err = store.PutRecord(ctx, "a/b", nil)
	require.ErrorIs(t, err, snapshot.ErrInvalidName)
	require.ErrorContains(t, err, "record name")

	require.NoError(t, store.DeleteRecord(ctx, "journal"))
	_, err = other.GetRecord(ctx, "journal")
	require.ErrorIs(t, err, snapshot.ErrNotFound)
}

// TestLockTwoMachines: two clients, each its own Store, play two machines
// sharing one cluster.
func TestLockTwoMachines(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	a, err := New(ctx, c.client(t), Options{Prefix: "lk/"})
	require.NoError(t, err)
	b, err := New(ctx, c.client(t), Options{Prefix: "lk/"})
	require.NoError(t, err)

	unlockA, err := a.Lock(ctx, "update", "host-a pid 1")
	require.NoError(t, err)
	_, err = b.Lock(ctx, "update", "host-b pid 2")
	require.ErrorIs(t, err, snapshot.ErrLocked)
	require.ErrorContains(t, err, `"host-a pid 1"`)
	_, err = a.Lock(ctx, "update", "host-a again")
	require.ErrorIs(t, err, snapshot.ErrLocked, "a second Lock on the same store must not pass")
	unlockOther, err := b.Lock(ctx, "other", "host-b pid 2")
	require.NoError(t, err, "locks of other names are independent")
	require.NoError(t, unlockOther(ctx))

	require.NoError(t, unlockA(ctx))
	require.NoError(t, unlockA(ctx), "unlock is idempotent")
	unlockB, err := b.Lock(ctx, "update", "host-b pid 2")
	require.NoError(t, err)
	_, err = a.Lock(ctx, "update", "host-a pid 1")
	require.ErrorContains(t, err, `"host-b pid 2"`)
	require.NoError(t, unlockB(ctx))

	_, err = a.Lock(ctx, "update", "")
	require.ErrorIs(t, err, snapshot.ErrInvalidName)
}

// TestLockExpiresWithDeadHolder: a holder whose client goes away without
// unlocking (its process died) keeps the lock until its lease expires,
// LeaseTTL later; then another machine takes it.
func TestLockExpiresWithDeadHolder(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	deadCli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	dead, err := New(ctx, deadCli, Options{Prefix: "lk/", LeaseTTL: 5 * time.Second})
	require.NoError(t, err)
	live, err := New(ctx, c.client(t), Options{Prefix: "lk/", LeaseTTL: 5 * time.Second})
	require.NoError(t, err)

	_, err = dead.Lock(ctx, "update", "dying host")
	require.NoError(t, err)
	_, err = live.Lock(ctx, "update", "live host")
	require.ErrorContains(t, err, `"dying host"`)

	// Watch for the dead holder's mutex key to go, then die: the client
	// stops keeping the lease alive and nobody unlocks.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	watch := live.cli.Watch(wctx, "lk/l/update/", clientv3.WithPrefix(), clientv3.WithFilterPut())
	require.NoError(t, deadCli.Close())
	select {
	case resp := <-watch:
		require.NoError(t, resp.Err())
		require.NotEmpty(t, resp.Events)
	case <-wctx.Done():
		t.Fatal("the dead holder's lock did not expire within 30s")
	}
	unlock, err := live.Lock(ctx, "update", "live host")
	require.NoError(t, err)
	require.NoError(t, unlock(ctx))
}
