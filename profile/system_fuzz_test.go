//go:build linux

package profile_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/profile"
)

// FuzzSystemCollector feeds malformed /proc/stat, /proc/meminfo and
// /proc/pressure/cpu files to the system collector: it returns samples or
// an error, never panics, and never reports a quantity that fails
// hal.Vector.Validate.
func FuzzSystemCollector(f *testing.F) {
	for _, name := range []string{"stat", "meminfo", "pressure/cpu"} {
		b, err := os.ReadFile(filepath.Join("testdata/proc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, b)
	}
	f.Add("stat", []byte("cpu  1 2 3 4\ncpu0 x\n"))
	f.Add("meminfo", []byte("MemTotal: -5 kB\n"))
	f.Add("pressure/cpu", []byte("some avg10=NaN total=1\n"))
	f.Fuzz(func(t *testing.T, name string, content []byte) {
		switch name {
		case "stat", "meminfo", "pressure/cpu":
		default:
			return
		}
		root := copyFixture(t, "testdata/proc")
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c, err := profile.NewSystemCollector(profile.SystemOptions{Root: root, Clock: func() time.Time { return now }})
		if err != nil {
			return
		}
		ctx := context.Background()
		if _, err := c.Collect(ctx); err != nil {
			return
		}
		writeFile(t, filepath.Join(root, name), string(content))
		now = now.Add(time.Second)
		samples, err := c.Collect(ctx)
		if err != nil {
			return
		}
		for _, s := range samples {
			if err := s.Usage.Validate(); err != nil {
				t.Fatalf("sample from malformed %s: %v", name, err)
			}
		}
	})
}
