//go:build unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

func lockFile(path, name, holder string) (func(context.Context) error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("snapshot: filestore lock %q: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 1024))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %q is held by %s", ErrLocked, name, describeHolder(string(b)))
		}
		return nil, fmt.Errorf("snapshot: filestore lock %q: flock %s: %w", name, path, err)
	}
	// The holder's name is for the error others get: best effort.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(holder), 0)
	}
	var once sync.Once
	var uerr error
	return func(context.Context) error {
		once.Do(func() {
			_ = f.Truncate(0)
			uerr = unix.Flock(int(f.Fd()), unix.LOCK_UN)
			if cerr := f.Close(); uerr == nil {
				uerr = cerr
			}
			if uerr != nil {
				uerr = fmt.Errorf("snapshot: filestore unlock %q: %w", name, uerr)
			}
		})
		return uerr
	}, nil
}
