package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/profile/trace"
)

func TestRunPrintsPerFileAndOverall(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"bitbrains.csv", "alibaba.csv"} {
		data, err := os.ReadFile(filepath.Join("../../profile/trace/testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a trace"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), &out, dir, 5*time.Minute, 5*time.Minute, 0.95, trace.VPA{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "alibaba.csv (2 series, 7 rows, 3 skipped): model slack=") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "bitbrains.csv (1 series, 7 rows, 3 skipped): ") {
		t.Errorf("second line %q", lines[1])
	}
	last := regexp.MustCompile(`^overall: model slack=-?[0-9.]+% violations=[0-9.]+% \| baseline slack=-?[0-9.]+% violations=[0-9.]+%$`)
	if !last.MatchString(lines[len(lines)-1]) {
		t.Errorf("last line %q does not match %v", lines[len(lines)-1], last)
	}
	if !strings.Contains(out.String(), "skipped alibaba.csv:6: time_stamp") {
		t.Errorf("broken rows are not named:\n%s", out.String())
	}
}

func TestRunRejectsEmptyDirectory(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, t.TempDir(), time.Hour, time.Hour, 0.95, trace.VPA{})
	if err == nil || !strings.Contains(err.Error(), "no trace files") {
		t.Fatalf("got %v", err)
	}
}

func TestNaturalOrder(t *testing.T) {
	got := []string{"d/10.csv.gz", "d/2.csv.gz", "d/1.csv.gz"}
	want := []string{"d/1.csv.gz", "d/2.csv.gz", "d/10.csv.gz"}
	files, err := traceFilesSorted(got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v want %v", files, want)
	}
}
