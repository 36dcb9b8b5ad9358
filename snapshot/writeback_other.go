//go:build !linux || !(amd64 || arm64)

package snapshot

import "os"

// startWriteback is a no-op where sync_file_range(2) is not available: the
// fsync at commit writes everything.
func startWriteback(f *os.File, off, n int64) {}
