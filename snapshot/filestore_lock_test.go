//go:build unix

package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockInProcess: the lock excludes a second holder in the same
// process (a second FileStore on the same directory, or the same store),
// names the holder, and is free again after unlock.
func TestLockInProcess(t *testing.T) {
	ctx := context.Background()
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			s := open(t)
			unlock, err := s.Lock(ctx, "update", "pid 1 (updraft-test)")
			require.NoError(t, err)
			_, err = s.Lock(ctx, "update", "someone else")
			require.ErrorIs(t, err, ErrLocked)
			require.ErrorContains(t, err, `"pid 1 (updraft-test)"`)
			other, err := s.Lock(ctx, "other", "someone else")
			require.NoError(t, err, "locks of other names are independent")
			require.NoError(t, other(ctx))
			require.NoError(t, unlock(ctx))
			require.NoError(t, unlock(ctx), "unlock is idempotent")
			again, err := s.Lock(ctx, "update", "someone else")
			require.NoError(t, err)
			require.NoError(t, again(ctx))
		})
	}
	t.Run("two FileStores", func(t *testing.T) {
		dir := t.TempDir()
		a, err := NewFileStore(dir, FileStoreOptions{})
		require.NoError(t, err)
		b, err := NewFileStore(dir, FileStoreOptions{})
		require.NoError(t, err)
		unlock, err := a.Lock(ctx, "update", "store a")
		require.NoError(t, err)
		_, err = b.Lock(ctx, "update", "store b")
		require.ErrorIs(t, err, ErrLocked)
		require.ErrorContains(t, err, `"store a"`)
		require.NoError(t, unlock(ctx))
		unlock, err = b.Lock(ctx, "update", "store b")
		require.NoError(t, err)
		require.NoError(t, unlock(ctx))
		ids, err := a.List(ctx)
		require.NoError(t, err)
		require.Empty(t, ids, "the lock file is listed as a snapshot")
	})
}

// TestLockAcrossProcesses: a child process holds the lock; this process is
// refused with the child's holder name; the child refuses this process's
// holder in turn; after the child unlocks, the lock is free.
func TestLockAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	child := startStoreChild(t, dir, "store-lock:update:child-holder")
	require.Equal(t, "locked", child.line(t))

	fs, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	_, err = fs.Lock(ctx, "update", "parent")
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorContains(t, err, `"child-holder"`)

	child.finish(t) // closes stdin: the child unlocks and exits cleanly
	unlock, err := fs.Lock(ctx, "update", "parent")
	require.NoError(t, err)

	second := startStoreChild(t, dir, "store-lock:update:second-child")
	line := second.line(t)
	require.Contains(t, line, `lock "update" is held by "parent"`)
	require.Error(t, second.cmd.Wait(), "the refused child must fail")
	require.NoError(t, unlock(ctx))
}

// TestLockReleasedWhenHolderKilled: SIGKILL gives the holder no chance to
// unlock; the kernel releases its flock, and the holder name it left in the
// file does not keep anyone out.
func TestLockReleasedWhenHolderKilled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	child := startStoreChild(t, dir, "store-lock:update:doomed")
	require.Equal(t, "locked", child.line(t))
	fs, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	_, err = fs.Lock(ctx, "update", "parent")
	require.ErrorContains(t, err, `"doomed"`)

	require.NoError(t, child.cmd.Process.Signal(syscall.SIGKILL))
	err = child.cmd.Wait() // reaped: its descriptors are closed
	require.Error(t, err)
	b, err := os.ReadFile(filepath.Join(dir, locksDir, "update"))
	require.NoError(t, err)
	require.Equal(t, "doomed", string(b), "the killed holder could not clear its name")

	unlock, err := fs.Lock(ctx, "update", "parent")
	require.NoError(t, err)
	b, err = os.ReadFile(filepath.Join(dir, locksDir, "update"))
	require.NoError(t, err)
	require.Equal(t, "parent", string(b))
	require.NoError(t, unlock(ctx))
}
