package degrade

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCgroupPSIFixtures(t *testing.T) {
	p, err := NewCgroupPSI("testdata/cgroup2/dataplane")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Pressure(context.Background()); err != nil || got != 22.75 {
		t.Fatalf("Pressure() = %v, %v; want the memory some avg10 22.75", got, err)
	}
	p, err = NewCgroupPSI("testdata/cgroup2/dataplane", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Pressure(context.Background()); got != 4.2 {
		t.Fatalf("cpu Pressure() = %v, want 4.2", got)
	}
	if _, err := NewCgroupPSI("testdata/cgroup2/missing"); err == nil || !strings.Contains(err.Error(), "cpu.pressure") {
		t.Fatalf("NewCgroupPSI(missing) = %v, want an error naming cpu.pressure", err)
	}
}

// TestCgroupPSIReal reads a real cgroup v2 directory: the unified hierarchy
// of a hybrid host, or the cgroup2 root.
func TestCgroupPSIReal(t *testing.T) {
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err != nil {
			continue
		}
		p, err := NewCgroupPSI(dir, "cpu")
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Pressure(context.Background())
		if err != nil || got < 0 || got > 100 {
			t.Fatalf("cgroup PSI at %s = %v, %v; want a percentage", dir, got, err)
		}
		return
	}
	t.Fatal("no cgroup v2 directory with cpu.pressure on this host: this test needs PSI (root, cgroup2 mounted)")
}
