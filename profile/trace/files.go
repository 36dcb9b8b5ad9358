package trace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNoTraces is returned (wrapped, naming the path) when a path holds no
// trace file. Check with errors.Is.
var ErrNoTraces = errors.New("trace: no trace files")

// FindFiles returns the trace files at path: path itself if it is a file,
// else every regular file under it (recursively), skipping hidden files
// and directories and READMEs, in natural order ("2.csv.gz" before
// "10.csv.gz").
func FindFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if strings.HasPrefix(name, ".") && p != path {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || strings.HasPrefix(strings.ToUpper(name), "README") || !d.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoTraces, path)
	}
	slices.SortFunc(files, naturalOrder)
	return files, nil
}

// naturalOrder orders paths by directory, then by the number their name
// starts with, then by name.
func naturalOrder(a, b string) int {
	if c := strings.Compare(filepath.Dir(a), filepath.Dir(b)); c != 0 {
		return c
	}
	na, nb := leadingNumber(filepath.Base(a)), leadingNumber(filepath.Base(b))
	if na != nb && na >= 0 && nb >= 0 {
		return na - nb
	}
	return strings.Compare(a, b)
}

func leadingNumber(s string) int {
	n, digits := 0, 0
	for _, c := range s {
		if c < '0' || c > '9' || digits == 9 {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return -1
	}
	return n
}

// ReadFiles reads every file with [ReadFile] and returns their series in
// order, with the stats added up.
func ReadFiles(files []string) ([]Series, Stats, error) {
	var (
		all   []Series
		stats Stats
	)
	for _, f := range files {
		s, st, err := ReadFile(f)
		stats.Add(st)
		if err != nil {
			return nil, stats, err
		}
		all = append(all, s...)
	}
	return all, stats, nil
}
