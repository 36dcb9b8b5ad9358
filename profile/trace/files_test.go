package trace_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/profile/trace"
)

func TestFindFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"10.csv.gz", "2.csv.gz", "1.csv.gz", "README.md", ".hidden", "sub/3.csv", ".git/x"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	files, err := trace.FindFiles(dir)
	require.NoError(t, err)
	var rel []string
	for _, f := range files {
		r, err := filepath.Rel(dir, f)
		require.NoError(t, err)
		rel = append(rel, r)
	}
	require.Equal(t, []string{"1.csv.gz", "2.csv.gz", "10.csv.gz", "sub/3.csv"}, rel, "natural order, READMEs and hidden entries skipped")

	one, err := trace.FindFiles(filepath.Join(dir, "2.csv.gz"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "2.csv.gz")}, one)

	_, err = trace.FindFiles(filepath.Join(dir, "sub", "none"))
	require.Error(t, err)
	empty := t.TempDir()
	_, err = trace.FindFiles(empty)
	require.ErrorIs(t, err, trace.ErrNoTraces)
	require.ErrorContains(t, err, empty)

	_, _, err = trace.ReadFiles([]string{"testdata/bitbrains.csv", "testdata/none.csv"})
	require.ErrorContains(t, err, "none.csv")
}
