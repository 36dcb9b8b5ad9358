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

func TestParsePressureErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   `no "some" line`,
		"full avg10=1 avg60=0\n":             `no "some" line`,
		"some avg60=1 total=3\n":             "without avg10",
		"some avg10=abc\n":                   `"abc"`,
		"some avg10=101.5 avg60=0\n":         "0-100",
		"\nsome avg10=-1 avg60=0 total=0\n":  "line 2",
		"some avg10=NaN avg60=0 total=0\n":   "NaN",
		"some avg10=+Inf avg60=0 total=0\n ": "Inf",
	} {
		if _, err := parsePressure([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePressure(%q) = %v, want an error with %q", in, err, want)
		}
	}
	if v, err := parsePressure([]byte("some avg10=7.5 avg60=1 avg300=0 total=9 new=1\n")); err != nil || v != 7.5 {
		t.Errorf("parsePressure with an unknown field = %v, %v", v, err)
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
	t.Skip("no cgroup v2 directory with cpu.pressure on this host")
}

func FuzzParsePressure(f *testing.F) {
	for _, name := range []string{"cpu", "memory", "io"} {
		b, err := os.ReadFile(filepath.Join("testdata/cgroup2/dataplane", name+".pressure"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("some avg10=1e2\n"))
	f.Add([]byte("some\x00avg10=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parsePressure(data)
		if err == nil && (v < 0 || v > 100 || v != v) {
			t.Fatalf("parsePressure(%q) = %v without error", data, v)
		}
	})
}
