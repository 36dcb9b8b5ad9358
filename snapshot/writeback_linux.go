//go:build linux && (amd64 || arm64)

package snapshot

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE from sync_file_range(2).
const syncFileRangeWrite = 2

// startWriteback asks the kernel to start writing f's bytes [off, off+n)
// to disk without waiting for them, so the final fsync finds most of the
// file already written while the snapshot was still being encoded. It is
// only a hint: an error is ignored, the fsync at commit is what counts.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	})
}
