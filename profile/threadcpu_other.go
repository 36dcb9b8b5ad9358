//go:build !linux

package profile

import "time"

// threadCPUTime is not available on this system; Track falls back to
// elapsed time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
