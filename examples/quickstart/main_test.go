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
	assert.Regexp(t, `update \S+ committed in`, s)
	assert.Regexp(t, `update \S+ rolled back in`, s)
	assert.Contains(t, s, "stats counted 100 packets remotely and brought them home")
	assert.Contains(t, s, "3 routes restored from the snapshot")
	assert.Contains(t, s, "moved to eu-west-faas (eu-west)")
	assert.Regexp(t, `conntrack\s+true`, s, "conntrack is judged critical from evidence")
}
