package etcdstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/snapshot"
)

func TestRecordsAndLocks(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	// Two clients play two machines sharing the cluster.
	a, err := New(ctx, c.client(t), Options{Prefix: "rec/", LeaseTTL: 5 * time.Second})
	require.NoError(t, err)
	b, err := New(ctx, c.client(t), Options{Prefix: "rec/", LeaseTTL: 5 * time.Second})
	require.NoError(t, err)

	t.Run("records", func(t *testing.T) {
		_, err := a.GetRecord(ctx, "journal")
		require.ErrorIs(t, err, snapshot.ErrNotFound)
		require.NoError(t, a.DeleteRecord(ctx, "journal"), "deleting a missing record is not an error")
		require.NoError(t, a.PutRecord(ctx, "journal", []byte("one")))
		require.NoError(t, a.PutRecord(ctx, "journal", []byte("two")))
		got, err := b.GetRecord(ctx, "journal")
		require.NoError(t, err)
		assert.Equal(t, "two", string(got), "the other machine reads the last put")
		ids, err := b.List(ctx)
		require.NoError(t, err)
		assert.Empty(t, ids, "records are not snapshots")
		require.NoError(t, b.DeleteRecord(ctx, "journal"))
		_, err = a.GetRecord(ctx, "journal")
		require.ErrorIs(t, err, snapshot.ErrNotFound)

		err = a.PutRecord(ctx, "journal", make([]byte, MaxRecordBytes+1))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "MaxRecordBytes")
		err = a.PutRecord(ctx, "a/b", nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "record name")
	})

	t.Run("lock names the holder across machines", func(t *testing.T) {
		unlock, err := a.Lock(ctx, "update", "machine-a pid 7")
		require.NoError(t, err)
		_, err = b.Lock(ctx, "update", "machine-b pid 9")
		require.ErrorIs(t, err, snapshot.ErrLocked)
		assert.Contains(t, err.Error(), `"machine-a pid 7"`)
		require.NoError(t, unlock(ctx))
		unlock, err = b.Lock(ctx, "update", "machine-b pid 9")
		require.NoError(t, err, "free after unlock")
		require.NoError(t, unlock(ctx))
	})

	t.Run("a dead holder's lock expires with its lease", func(t *testing.T) {
		dying := c.client(t)
		d, err := New(ctx, dying, Options{Prefix: "rec/", LeaseTTL: 5 * time.Second})
		require.NoError(t, err)
		_, err = d.Lock(ctx, "update", "machine-d")
		require.NoError(t, err)
		require.NoError(t, dying.Close()) // the holder's process dies: no more keep-alives
		_, err = a.Lock(ctx, "update", "machine-a")
		require.ErrorIs(t, err, snapshot.ErrLocked)
		// The lease (TTL 5s) expires on the server: poll for it, one
		// attempt at a time (an attempt that wins holds the lock).
		var unlock func(context.Context) error
		for deadline := time.Now().Add(30 * time.Second); ; {
			unlock, err = a.Lock(ctx, "update", "machine-a")
			if err == nil {
				break
			}
			require.ErrorIs(t, err, snapshot.ErrLocked)
			// Only the dead holder has it (its name may expire a moment
			// before its lock does).
			if !strings.Contains(err.Error(), "machine-d") {
				require.Contains(t, err.Error(), "not named itself")
			}
			require.True(t, time.Now().Before(deadline), "the dead holder's lease never expired")
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, unlock(ctx))
	})
}
