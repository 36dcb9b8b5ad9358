package validate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/validate"
)

// TestOptionsClockTimesChecks: a Result's Duration is read from
// Options.Clock, not from package time.
func TestOptionsClockTimesChecks(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { // called from the check's goroutine only
		now = now.Add(5 * time.Second)
		return now
	}
	s, err := validate.New([]validate.Check{validate.Func("ok", func(context.Context) error { return nil })},
		validate.Options{Clock: clock})
	require.NoError(t, err)
	rep, err := s.Validate(context.Background())
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, rep.Results[0].Duration)
}
