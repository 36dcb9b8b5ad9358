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

// defaults is the configuration main builds from its flags' defaults.
func defaults(paths ...string) config {
	return config{
		paths:  paths,
		vpa:    trace.DefaultVPAConfig(),
		window: trace.DefaultWindowConfig(),
	}
}

// fixtures copies the hand-made trace fixtures of profile/trace into a
// directory with a README beside them.
func fixtures(t *testing.T) string {
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
	return dir
}

var (
	resourceLine = `model slack=(n/a|[0-9.]+%) violations=(n/a|[0-9.]+%) \| vpa slack=(n/a|[0-9.]+%) violations=(n/a|[0-9.]+%)`
	cpuLine      = regexp.MustCompile(`^cpu: ` + resourceLine + `$`)
	memoryLine   = regexp.MustCompile(`^memory: ` + resourceLine + `$`)
	overallLine  = regexp.MustCompile(`^overall: model slack=(n/a|[0-9.]+%) violations=(n/a|[0-9.]+%) \| baseline slack=(n/a|[0-9.]+%) violations=(n/a|[0-9.]+%)$`)
)

func TestRunPrintsTheIssuesLines(t *testing.T) {
	dir := fixtures(t)
	c := defaults(dir)
	c.replay = trace.ReplayOptions{Window: 5 * time.Minute, Warmup: 5 * time.Minute}
	var out bytes.Buffer
	if err := run(context.Background(), &out, c); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], filepath.Join(dir, "alibaba.csv")+" (2 series, 7 rows, 3 skipped): model slack=") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], filepath.Join(dir, "bitbrains.csv")+" (1 series, 7 rows, 3 skipped): ") {
		t.Errorf("second line %q", lines[1])
	}
	n := len(lines)
	for i, re := range []*regexp.Regexp{cpuLine, memoryLine, overallLine} {
		if !re.MatchString(lines[n-3+i]) {
			t.Errorf("line %d from the end %q does not match %v", 3-i, lines[n-3+i], re)
		}
	}
	for _, want := range []string{"skipped alibaba.csv:6: time_stamp", "cpu    vpa-0.001", "memory p95-2h×1.2", "aim per resource", "anchor per resource", "\n  cpu: knowing each window's mean in advance"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSweepTracesEveryMethodAndPlots(t *testing.T) {
	c := defaults(fixtures(t))
	c.replay = trace.ReplayOptions{Window: 5 * time.Minute, Warmup: 5 * time.Minute}
	c.sweep = true
	c.plot = filepath.Join(t.TempDir(), "curves")
	var out bytes.Buffer
	if err := run(context.Background(), &out, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vpa (margin): [margin=0 ", "p95-2h (factor): [×1 ", "model (cost ×f, memory headroom h): [f=0.1 h=0 ", "the model's curve at the reference's violation rate:\n  cpu: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		data, err := os.ReadFile(c.plot + "-" + r + ".png")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s plot is not a PNG", r)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !overallLine.MatchString(lines[len(lines)-1]) {
		t.Errorf("last line %q", lines[len(lines)-1])
	}
}

func TestRunRejectsEmptyDirectory(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, defaults(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "no trace files") {
		t.Fatalf("got %v", err)
	}
}

func TestZeroMarginsAreZero(t *testing.T) {
	if noneIfZero(0) >= 0 {
		t.Fatal("a memory headroom of 0 must reach profile.Options as none (negative)")
	}
	if noneIfZero(0.2) != 0.2 {
		t.Fatal("a positive headroom is passed as it is")
	}
}
