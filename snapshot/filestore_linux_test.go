//go:build linux

package snapshot

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFullFileSystem writes snapshots to a real 4 MiB tmpfs until it is
// full: the failing snapshot is refused with the kernel's ENOSPC, leaves no
// file behind, and the previous snapshot stays readable.
func TestFullFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	ctx := context.Background()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount tmpfs (no mount privilege in this container?): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	fs, err := NewFileStore(dir, FileStoreOptions{Retain: RetainAll})
	require.NoError(t, err)
	small := &faultySource{data: testValue(1, 1<<20)}
	e, err := New(fs, map[string]Source{"s": small}, Options{CompressionLevel: NoCompression})
	require.NoError(t, err)
	good, err := e.Snapshot(ctx)
	require.NoError(t, err)

	small.data = testValue(2, 6<<20) // more than what is left
	_, err = e.Snapshot(ctx)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorContains(t, err, "no space left on device")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the failed snapshot left a file behind")
	_, err = e.Load(ctx, good.ID)
	require.NoError(t, err, "the previous snapshot was damaged")
}
