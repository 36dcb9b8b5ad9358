//go:build !unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
)

func lockFile(path, name, holder string) (func(context.Context) error, error) {
	return nil, fmt.Errorf("snapshot: filestore lock %q: %w", name, errors.ErrUnsupported)
}
