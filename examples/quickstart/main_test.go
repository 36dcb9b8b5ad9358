package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickstart runs the example as a newcomer would and checks the story
// it tells: one update committed, one rolled back, state intact.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	s := out.String()
	assert.Contains(t, s, "update committed in")
	assert.Contains(t, s, "update rolled back in")
	assert.Contains(t, s, "stats counted 100 packets remotely and brought them home")
	assert.Contains(t, s, "3 routes restored from the snapshot")
	assert.Contains(t, s, "moved to eu-west-faas (eu-west)")
	assert.Regexp(t, `conntrack\s+true`, s, "conntrack is judged critical from evidence")
}
