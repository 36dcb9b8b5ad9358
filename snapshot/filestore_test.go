package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// childEnv selects what the test binary does when re-executed as a child.
const childEnv = "UPDRAFT_SNAPSHOT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "crash-writer" {
		if err := crashWriter(os.Getenv("UPDRAFT_SNAPSHOT_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "lock-holder" {
		os.Exit(lockHolder(os.Getenv("UPDRAFT_SNAPSHOT_TEST_DIR")))
	}
	os.Exit(m.Run())
}

// endlessSource's view writes forever: the child writing it is killed.
type endlessSource struct{}

func (endlessSource) Capture(context.Context) (View, error)    { return endlessView{}, nil }
func (endlessSource) Restore(context.Context, io.Reader) error { return nil }

type endlessView struct{}

func (endlessView) WriteTo(w io.Writer) (int64, error) {
	block := testValue(1, 1<<20)
	var n int64
	for {
		k, err := w.Write(block)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}

// announcingStore tells the parent, on stdout, once a sink has taken 8 MiB.
type announcingStore struct{ *FileStore }

func (s announcingStore) Create(ctx context.Context, id string) (Sink, error) {
	sink, err := s.FileStore.Create(ctx, id)
	return &announcingSink{Sink: sink}, err
}

type announcingSink struct {
	Sink
	n    int
	told bool
}

func (s *announcingSink) Write(p []byte) (int, error) {
	n, err := s.Sink.Write(p)
	s.n += n
	if s.n >= 8<<20 && !s.told {
		s.told = true
		fmt.Println("mid-write")
	}
	return n, err
}

func crashWriter(dir string) error {
	fs, err := NewFileStore(dir, FileStoreOptions{})
	if err != nil {
		return err
	}
	e, err := New(announcingStore{fs}, map[string]Source{"routes": endlessSource{}}, Options{AppVersion: "1"})
	if err != nil {
		return err
	}
	_, err = e.Snapshot(context.Background())
	return err
}

// TestCrashMidWriteKeepsPreviousSnapshot kills a child process with SIGKILL
// while it writes a snapshot into a directory that already holds one.
func TestCrashMidWriteKeepsPreviousSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	src := newTestState(t)
	fillMap(t, src.routes, 500, 1000)
	good, err := newTestEngine(t, fs, src, Options{AppVersion: "1"}).Snapshot(ctx)
	require.NoError(t, err)

	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=crash-writer", "UPDRAFT_SNAPSHOT_TEST_DIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "child stderr: %s", stderr.String())
	require.Equal(t, "mid-write\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())

	// The half-written file is there, but not listed.
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*"+tempMarker+"*"))
	require.NoError(t, err)
	require.Len(t, leftovers, 1, "the child should have left its temporary file")
	st, err := os.Stat(leftovers[0])
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(4<<20))
	ids, err := fs.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{good.ID}, ids)

	// Reopening the store cleans the leftover; the old snapshot restores.
	fs2, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	leftovers, _ = filepath.Glob(filepath.Join(dir, ".*"))
	require.Empty(t, leftovers)
	dst := newTestState(t)
	require.NoError(t, newTestEngine(t, fs2, dst, Options{AppVersion: "1"}).Restore(ctx, good))
	require.Equal(t, 500, dst.routes.Len())
}

func TestFileStoreBasics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{Retain: 2})
	require.NoError(t, err)
	write := func(id, content string) {
		t.Helper()
		w := storeWrite(t, s, id, content)
		require.NoError(t, w.Close(), "a second Close is harmless")
		_, err = w.Write([]byte("x"))
		require.ErrorIs(t, err, ErrSealed)
	}
	read := func(id string) (string, error) { return storeRead(s, id) }
	write("a", "first")
	write("b", "second")
	_, err = s.Create(ctx, "b")
	require.ErrorContains(t, err, "already exists")
	got, err := read("a")
	require.NoError(t, err)
	require.Equal(t, "first", got)

	// A cancelled sink leaves nothing.
	w, err := s.Create(ctx, "c")
	require.NoError(t, err)
	_, err = io.WriteString(w, "never")
	require.NoError(t, err)
	require.NoError(t, w.Cancel())
	ids, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids)
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 2, "cancel left a file behind")

	// Retention keeps the newest two.
	write("c", "third")
	ids, err = s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c"}, ids)

	require.NoError(t, s.Delete(ctx, "b"))
	require.ErrorIs(t, s.Delete(ctx, "b"), ErrNotFound)
	_, err = s.Open(ctx, "b")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Create(ctx, "x/../escape")
	require.ErrorContains(t, err, "allowed are")
}

func TestFileStoreDetectsDamagedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	w, err := s.Create(ctx, "snap")
	require.NoError(t, err)
	_, err = io.WriteString(w, strings.Repeat("critical state ", 1000))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	path := filepath.Join(dir, "snap"+fileSuffix)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	cases := map[string]struct {
		mutate func([]byte) []byte
		want   string
	}{
		"bit flip in content": {func(b []byte) []byte { b[100] ^= 1; return b }, "file checksum"},
		"bit flip in footer":  {func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "footer magic"},
		"truncated":           {func(b []byte) []byte { return b[:len(b)-100] }, "footer magic"},
		"tiny":                {func(b []byte) []byte { return b[:5] }, "shorter than"},
		"appended": {func(b []byte) []byte {
			return append(b[:len(b)-footerSize:len(b)-footerSize], append([]byte("x"), b[len(b)-footerSize:]...)...)
		}, "footer says"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, c.mutate(append([]byte(nil), orig...)), 0o600))
			r, err := s.Open(ctx, "snap")
			if err == nil {
				_, err = io.ReadAll(r)
				r.Close()
			}
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestNewFileStoreChecksUpFront(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := NewFileStore(file, FileStoreOptions{})
	require.ErrorContains(t, err, "is not a directory")
	_, err = NewFileStore(filepath.Join(dir, "missing"), FileStoreOptions{})
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	_, err = NewFileStore("", FileStoreOptions{})
	require.ErrorContains(t, err, "dir is empty")
	_, err = NewFileStore(dir, FileStoreOptions{Retain: -5})
	require.ErrorContains(t, err, "Retain -5 is invalid")
	// A read-only file system refuses writes even to root: /proc is one.
	_, err = NewFileStore("/proc", FileStoreOptions{})
	require.ErrorContains(t, err, "is not writable")
}

// Retention keeps the file of a retired snapshot and overwrites it with the
// next one: the new snapshot reads back exactly (the old, longer tail is
// cut off), nothing else is left but that one spare, and reopening the store
// removes the spare.
func TestFileStoreRecyclesRetiredFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{Retain: 1})
	require.NoError(t, err)
	write := func(id, content string) { t.Helper(); storeWrite(t, s, id, content) }
	read := func(id string) string {
		t.Helper()
		got, err := storeRead(s, id)
		require.NoError(t, err)
		return got
	}
	spares := func() []string {
		t.Helper()
		names, err := filepath.Glob(filepath.Join(dir, ".spare"+tempMarker+"*"))
		require.NoError(t, err)
		return names
	}
	long := strings.Repeat("long snapshot ", 10_000)
	write("a", long)
	require.Empty(t, spares())
	write("b", "short")
	require.Len(t, spares(), 1, "retention kept a's file as the spare")
	spare, err := os.Stat(spares()[0])
	require.NoError(t, err)

	write("c", "shorter")
	c, err := os.Stat(s.path("c"))
	require.NoError(t, err)
	require.True(t, os.SameFile(spare, c), "c was not written over the spare")
	require.Equal(t, "shorter", read("c"), "the spare's old tail survived")
	ids, err := s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, ids)
	require.Len(t, spares(), 1, "b's file is the spare now")

	write("d", long+"!")
	require.Equal(t, long+"!", read("d"), "a snapshot longer than the spare")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "one snapshot and one spare")

	_, err = NewFileStore(dir, FileStoreOptions{Retain: 1})
	require.NoError(t, err)
	require.Empty(t, spares(), "a new store removes the spare")
	_, err = s.Open(ctx, "d")
	require.NoError(t, err)
}

// storeWrite commits content as snapshot id in s and returns the closed
// sink.
func storeWrite(t *testing.T, s Store, id, content string) Sink {
	t.Helper()
	w, err := s.Create(context.Background(), id)
	require.NoError(t, err)
	_, err = io.WriteString(w, content)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return w
}

// storeRead reads snapshot id back from s.
func storeRead(s Store, id string) (string, error) {
	r, err := s.Open(context.Background(), id)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// Concurrent writers share the spare without losing a snapshot: every
// commit reads back exactly, retention keeps the newest two, and at most
// one spare is left.
func TestFileStoreRecyclingUnderConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{Retain: 2})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4*10)
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("w%d-%02d", w, i)
				content := strings.Repeat(id, 1000*(1+(w+i)%3)) // sizes differ: spares are longer and shorter
				sink, err := s.Create(ctx, id)
				if err == nil {
					_, err = io.WriteString(sink, content)
				}
				if err == nil {
					err = sink.Close()
				}
				if err == nil {
					// Retention may already have retired it; if not, it reads back whole.
					if got, rerr := storeRead(s, id); rerr == nil && got != content {
						err = fmt.Errorf("%s read back %d bytes, wrote %d", id, len(got), len(content))
					} else if rerr != nil && !errors.Is(rerr, ErrNotFound) {
						err = rerr
					}
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for _, id := range ids {
		_, err := storeRead(s, id)
		require.NoError(t, err, id)
	}
	spares, err := filepath.Glob(filepath.Join(dir, ".spare"+tempMarker+"*"))
	require.NoError(t, err)
	require.LessOrEqual(t, len(spares), 1)
}

// A snapshot retired while it is being read is deleted, not recycled: the
// reader keeps reading it whole while later snapshots are written.
func TestFileStoreDoesNotRecycleASnapshotBeingRead(t *testing.T) {
	ctx := context.Background()
	s, err := NewFileStore(t.TempDir(), FileStoreOptions{Retain: 1})
	require.NoError(t, err)
	long := strings.Repeat("snapshot a ", 10_000)
	storeWrite(t, s, "a", long)
	r, err := s.Open(ctx, "a")
	require.NoError(t, err)
	storeWrite(t, s, "b", "b")                            // retires a, which is open
	storeWrite(t, s, "c", strings.Repeat("c", len(long))) // written over a spare, if there is one
	got, err := io.ReadAll(r)
	require.NoError(t, err, "the open snapshot was overwritten")
	require.Equal(t, long, string(got))
	require.NoError(t, r.Close())
	_, err = s.Open(ctx, "a")
	require.ErrorIs(t, err, ErrNotFound)
}

// An Engine turns the FileStore's own checksum off (it checks every byte of
// a snapshot itself): a flipped bit in a frame is still refused, by the
// frame's checksum, and a damaged footer checksum over intact content no
// longer is, while a plain reader of the store still reports it.
func TestEngineChecksFileStoreContentItself(t *testing.T) {
	_, m, raw := smallSnapshot(t, nil)
	dir := t.TempDir()
	s, err := NewFileStore(dir, FileStoreOptions{})
	require.NoError(t, err)
	storeWrite(t, s, m.ID, string(raw))
	path := filepath.Join(dir, m.ID+fileSuffix)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	damage := func(at int) {
		t.Helper()
		bad := bytes.Clone(orig)
		bad[at] ^= 0x10
		require.NoError(t, os.WriteFile(path, bad, 0o600))
	}

	damage(headerSize + frameHeaderSize + 5) // the first frame's payload
	err, touched := restoreInto(t, s, m.ID, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "frame 0 at offset 48: checksum")
	require.False(t, touched)

	damage(len(orig) - footerSize) // the footer's checksum
	_, err = storeRead(s, m.ID)
	require.ErrorContains(t, err, "file checksum")
	err, touched = restoreInto(t, s, m.ID, nil)
	require.NoError(t, err)
	require.True(t, touched)
}
