package durable

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	require.NoError(t, WriteFile(path, []byte("one")))
	require.NoError(t, WriteFile(path, []byte("two, longer")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two, longer", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")

	err = WriteFile(filepath.Join(dir, "missing", "x"), nil)
	require.Error(t, err)
	require.Error(t, SyncDir(filepath.Join(dir, "missing")))
}
