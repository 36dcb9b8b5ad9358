//go:build linux

package profile_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyFixture copies a testdata tree into a temporary directory, so a test
// may rewrite files between reads.
func copyFixture(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// procStat renders a /proc/<pid>/stat line with the given CPU ticks and
// resident pages; the other fields are plausible constants.
func procStat(pid int, comm string, utime, stime, rssPages int) string {
	f := []string{fmt.Sprint(pid), "(" + comm + ")", "S", "1", fmt.Sprint(pid), fmt.Sprint(pid), "0", "-1", "4194304",
		"100", "0", "0", "0", fmt.Sprint(utime), fmt.Sprint(stime), "0", "0", "20", "0", "4", "0", "12345",
		"104857600", fmt.Sprint(rssPages)}
	for len(f) < 52 {
		f = append(f, "0")
	}
	return strings.Join(f, " ") + "\n"
}

func procIO(readBytes, writeBytes int) string {
	return fmt.Sprintf("rchar: 1\nwchar: 1\nsyscr: 1\nsyscw: 1\nread_bytes: %d\nwrite_bytes: %d\ncancelled_write_bytes: 0\n", readBytes, writeBytes)
}

func systemStat(user, nice, system, idle int) string {
	return fmt.Sprintf("cpu  %d %d %d %d 0 0 0 0 0 0\ncpu0 %d %d %d %d 0 0 0 0 0 0\nintr 0\nctxt 0\nbtime 1700000000\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
		user, nice, system, idle, user, nice, system, idle)
}
