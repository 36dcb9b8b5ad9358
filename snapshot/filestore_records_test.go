package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordStore is what records and locks tests need of a store.
type recordStore interface {
	Store
	PutRecord(ctx context.Context, name string, data []byte) error
	GetRecord(ctx context.Context, name string) ([]byte, error)
	DeleteRecord(ctx context.Context, name string) error
	Lock(ctx context.Context, name, holder string) (func(context.Context) error, error)
}

var (
	_ recordStore = (*FileStore)(nil)
	_ recordStore = (*MemStore)(nil)
)

func recordStores(t *testing.T) map[string]func(t *testing.T) recordStore {
	return map[string]func(t *testing.T) recordStore{
		"file": func(t *testing.T) recordStore {
			fs, err := NewFileStore(t.TempDir(), FileStoreOptions{})
			require.NoError(t, err)
			return fs
		},
		"mem": func(*testing.T) recordStore { return NewMemStore() },
	}
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			s := open(t)
			_, err := s.GetRecord(ctx, "journal")
			require.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, s.DeleteRecord(ctx, "journal"), "deleting a missing record is not an error")

			require.NoError(t, s.PutRecord(ctx, "journal", []byte("v1")))
			require.NoError(t, s.PutRecord(ctx, "other", nil))
			got, err := s.GetRecord(ctx, "journal")
			require.NoError(t, err)
			require.Equal(t, "v1", string(got))
			got[0] = 'X' // the caller's copy
			require.NoError(t, s.PutRecord(ctx, "journal", []byte("version two")))
			got, err = s.GetRecord(ctx, "journal")
			require.NoError(t, err)
			require.Equal(t, "version two", string(got))
			empty, err := s.GetRecord(ctx, "other")
			require.NoError(t, err)
			require.Empty(t, empty)

			// Records are not snapshots, and snapshots are not records.
			w, err := s.Create(ctx, "snap1")
			require.NoError(t, err)
			_, err = w.Write([]byte("state"))
			require.NoError(t, err)
			require.NoError(t, w.Close())
			ids, err := s.List(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"snap1"}, ids)
			_, err = s.GetRecord(ctx, "snap1")
			require.ErrorIs(t, err, ErrNotFound)

			require.NoError(t, s.DeleteRecord(ctx, "journal"))
			_, err = s.GetRecord(ctx, "journal")
			require.ErrorIs(t, err, ErrNotFound)
			_, err = s.Open(ctx, "snap1")
			require.NoError(t, err, "deleting a record touched a snapshot")
		})
	}
}

func TestRecordNamesValidated(t *testing.T) {
	ctx := context.Background()
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			s := open(t)
			for _, name := range []string{"", ".hidden", "a/b", "../x", strings.Repeat("n", 129)} {
				err := s.PutRecord(ctx, name, []byte("x"))
				require.ErrorIs(t, err, ErrInvalidName, "PutRecord(%q)", name)
				require.ErrorContains(t, err, "PutRecord")
				require.ErrorContains(t, err, "record name")
				_, err = s.GetRecord(ctx, name)
				require.ErrorIs(t, err, ErrInvalidName)
				require.ErrorIs(t, s.DeleteRecord(ctx, name), ErrInvalidName)
				_, err = s.Lock(ctx, name, "me")
				require.ErrorIs(t, err, ErrInvalidName)
				require.ErrorContains(t, err, "lock name")
			}
			for _, holder := range []string{"", "a\nb", strings.Repeat("h", 257)} {
				_, err := s.Lock(ctx, "update", holder)
				require.ErrorIs(t, err, ErrInvalidName, "holder %q", holder)
				require.ErrorContains(t, err, "holder")
			}
		})
	}
}

func TestRecordsHonourCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for kind, open := range recordStores(t) {
		t.Run(kind, func(t *testing.T) {
			s := open(t)
			require.ErrorIs(t, s.PutRecord(ctx, "r", nil), context.Canceled)
			_, err := s.GetRecord(ctx, "r")
			require.ErrorIs(t, err, context.Canceled)
			_, err = s.Lock(ctx, "r", "me")
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// TestFileRecordLayout: records live in their own subdirectory and leave
// no temporary file behind; a leftover temporary file is not a record.
func TestFileRecordLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	require.NoError(t, fs.PutRecord(ctx, "journal", []byte("j")))
	require.NoError(t, fs.PutRecord(ctx, "journal", []byte("j2")))
	entries, err := os.ReadDir(filepath.Join(dir, recordsDir))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "journal", entries[0].Name())
	// A crash before the rename leaves a temporary file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, recordsDir, ".journal"+tempMarker+"00"), []byte("torn"), 0o600))
	got, err := fs.GetRecord(ctx, "journal")
	require.NoError(t, err)
	require.Equal(t, "j2", string(got))
	ids, err := fs.List(ctx)
	require.NoError(t, err)
	require.Empty(t, ids)
}

// storeChild is what the test binary does when re-executed with a
// "store-..." mode, on a FileStore in dir:
//
//	store-put:NAME:HEX   writes record NAME and exits
//	store-get:NAME       prints the record NAME in hex, or "notfound"
//	store-lock:NAME:HOLDER  takes the lock, prints "locked" (or the error
//	                     on one line), then holds it until stdin closes
func storeChild(mode, dir string, stdin io.Reader, stdout io.Writer) error {
	ctx := context.Background()
	fs, err := NewFileStore(dir, FileStoreOptions{})
	if err != nil {
		return err
	}
	parts := strings.Split(mode, ":")
	switch {
	case parts[0] == "store-put" && len(parts) == 3:
		data, err := hex.DecodeString(parts[2])
		if err != nil {
			return err
		}
		return fs.PutRecord(ctx, parts[1], data)
	case parts[0] == "store-get" && len(parts) == 2:
		data, err := fs.GetRecord(ctx, parts[1])
		if errors.Is(err, ErrNotFound) {
			_, err = fmt.Fprintln(stdout, "notfound")
			return err
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, hex.EncodeToString(data))
		return err
	case parts[0] == "store-lock" && len(parts) == 3:
		unlock, err := fs.Lock(ctx, parts[1], parts[2])
		if err != nil {
			fmt.Fprintln(stdout, "error:", err)
			return err
		}
		if _, err := fmt.Fprintln(stdout, "locked"); err != nil {
			return err
		}
		io.Copy(io.Discard, stdin) // until the parent closes stdin
		return unlock(ctx)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// storeProc is a child process running storeChild.
type storeProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *lockedBuffer
}

// lockedBuffer collects a child's stderr, written by exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startStoreChild(t *testing.T, dir, mode string) *storeProc {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "UPDRAFT_SNAPSHOT_TEST_DIR="+dir)
	p := &storeProc{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	p.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p.out = bufio.NewReader(out)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p
}

func (p *storeProc) line(t *testing.T) string {
	t.Helper()
	l, err := p.out.ReadString('\n')
	require.NoError(t, err, "child stderr: %s", p.stderr.String())
	return strings.TrimSuffix(l, "\n")
}

// finish closes the child's stdin and requires a clean exit.
func (p *storeProc) finish(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	require.NoError(t, p.cmd.Wait(), "child stderr: %s", p.stderr.String())
}

// TestFileRecordAcrossProcesses: one child process writes a record, another
// reads it; the parent replaces it and a third child reads the new one.
func TestFileRecordAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := []byte("journal: update u1, phase partition\x00\xff")
	startStoreChild(t, dir, "store-put:journal:"+hex.EncodeToString(data)).finish(t)

	reader := startStoreChild(t, dir, "store-get:journal")
	require.Equal(t, hex.EncodeToString(data), reader.line(t))
	reader.finish(t)

	fs, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	got, err := fs.GetRecord(ctx, "journal")
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.NoError(t, fs.DeleteRecord(ctx, "journal"))
	gone := startStoreChild(t, dir, "store-get:journal")
	require.Equal(t, "notfound", gone.line(t))
	gone.finish(t)
}
