//go:build !unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
)

// Lock is not supported on this platform: FileStore's lock is a flock(2),
// available on Unix systems only. It returns an error saying so.
func (s *FileStore) Lock(ctx context.Context, name, holder string) (unlock func(context.Context) error, err error) {
	const fn = "snapshot: filestore Lock"
	if err := CheckLockArgs(fn, name, holder); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s %q: %w", fn, name, errors.ErrUnsupported)
}
