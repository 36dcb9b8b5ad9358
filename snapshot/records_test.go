package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordStore is what every store offers for the update journal.
type recordStore interface {
	Store
	PutRecord(ctx context.Context, name string, data []byte) error
	GetRecord(ctx context.Context, name string) ([]byte, error)
	DeleteRecord(ctx context.Context, name string) error
	Lock(ctx context.Context, name, holder string) (func(context.Context) error, error)
}

func recordStores(t *testing.T) map[string]func(t *testing.T) recordStore {
	return map[string]func(t *testing.T) recordStore{
		"mem": func(t *testing.T) recordStore { return NewMemStore() },
		"file": func(t *testing.T) recordStore {
			s, err := NewFileStore(t.TempDir(), FileStoreOptions{})
			require.NoError(t, err)
			return s
		},
	}
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	for name, open := range recordStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			_, err := s.GetRecord(ctx, "journal")
			require.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, s.DeleteRecord(ctx, "journal"), "deleting a missing record is not an error")

			require.NoError(t, s.PutRecord(ctx, "journal", []byte("one")))
			require.NoError(t, s.PutRecord(ctx, "journal", []byte("two")))
			got, err := s.GetRecord(ctx, "journal")
			require.NoError(t, err)
			assert.Equal(t, "two", string(got), "a put replaces the record")
			got[0] = 'X'
			again, _ := s.GetRecord(ctx, "journal")
			assert.Equal(t, "two", string(again), "the caller's copy is its own")

			ids, err := s.List(ctx)
			require.NoError(t, err)
			assert.Empty(t, ids, "records are not snapshots")

			require.NoError(t, s.DeleteRecord(ctx, "journal"))
			_, err = s.GetRecord(ctx, "journal")
			require.ErrorIs(t, err, ErrNotFound)

			for _, bad := range []string{"", ".hidden", "a/b", strings.Repeat("x", 129)} {
				err := s.PutRecord(ctx, bad, nil)
				require.Error(t, err, "name %q", bad)
				assert.Contains(t, err.Error(), "record name")
			}
		})
	}
}

func TestLockNamesTheHolder(t *testing.T) {
	ctx := context.Background()
	for name, open := range recordStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			unlock, err := s.Lock(ctx, "update", "host-a pid 1")
			require.NoError(t, err)
			_, err = s.Lock(ctx, "update", "host-b pid 2")
			require.ErrorIs(t, err, ErrLocked)
			assert.Contains(t, err.Error(), `"host-a pid 1"`)
			other, err := s.Lock(ctx, "other", "host-b")
			require.NoError(t, err, "locks of other names are independent")
			require.NoError(t, other(ctx))
			require.NoError(t, unlock(ctx))
			require.NoError(t, unlock(ctx), "unlocking twice is harmless")
			unlock, err = s.Lock(ctx, "update", "host-b pid 2")
			require.NoError(t, err, "free again after unlock")
			require.NoError(t, unlock(ctx))
		})
	}
}

// TestFileLockAcrossProcesses: a child process holds the lock; this
// process is refused with the child's name; when the child is killed the
// kernel releases the lock.
func TestFileLockAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=lock-holder", "UPDRAFT_SNAPSHOT_TEST_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe() // held open: the child waits on it
	require.NoError(t, err)
	defer stdin.Close()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	_, err = s.Lock(ctx, "update", "parent")
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), fmt.Sprintf(`"child pid %d"`, cmd.Process.Pid))

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	unlock, err := s.Lock(ctx, "update", "parent")
	require.NoError(t, err, "a dead holder's lock is released")
	require.NoError(t, unlock(ctx))
}

// lockHolder is the child of TestFileLockAcrossProcesses: it takes the
// lock, says so and waits to be killed.
func lockHolder(dir string) int {
	s, err := NewFileStore(dir, FileStoreOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := s.Lock(context.Background(), "update", fmt.Sprintf("child pid %d", os.Getpid())); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent kills it or closes stdin
	return 0
}

// TestFileRecordsAcrossStores: a record put by one FileStore is read by
// another over the same directory (what a new process sees).
func TestFileRecordsAcrossStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	require.NoError(t, a.PutRecord(ctx, "journal", []byte(`{"v":1}`)))
	b, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	got, err := b.GetRecord(ctx, "journal")
	require.NoError(t, err)
	assert.Equal(t, `{"v":1}`, string(got))
	ids, err := b.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)
}
