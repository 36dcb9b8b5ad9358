package testchild_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/testchild"
)

func TestExitChild(t *testing.T) {
	cmd := testchild.Command(t, testchild.Exit)
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit child: %v, want status 0", err)
	}
	if !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit child ended %v, want status 0", cmd.ProcessState)
	}
}

// TestBadModeChild: a child given a mode it cannot parse says why on
// stderr and exits with status 2 rather than running the tests.
func TestBadModeChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testchild.EnvVar+"=spin:1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child in mode spin:1 ended with %v, output %q; want exit status 2", err, out)
	}
	if !strings.Contains(string(out), `testchild: mode "spin:1"`) {
		t.Errorf("child's output %q does not name the bad mode", out)
	}
}

// TestCloseStdinEndsChild: a ready child exits with status 0 once its
// stdin closes, so children do not outlive their test binary.
func TestCloseStdinEndsChild(t *testing.T) {
	for _, mode := range []string{testchild.Hold(0), testchild.Burn(1)} {
		c := testchild.Start(t, mode)
		if err := c.CloseStdin(); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			t.Errorf("child in mode %q after its stdin closed: %v, want status 0", mode, err)
		}
		if err := c.Wait(); err != nil {
			t.Errorf("second Wait: %v, want the first's nil", err)
		}
	}
}

// TestKillWaits: Kill ends a child that would otherwise run on, and Wait
// then reports that it did not exit by itself.
func TestKillWaits(t *testing.T) {
	c := testchild.Start(t, testchild.Burn(1))
	c.Kill()
	var exit *exec.ExitError
	if err := c.Wait(); !errors.As(err, &exit) || exit.Success() {
		t.Fatalf("Wait after Kill = %v, want the killed child's failure status", err)
	}
}

// fatalRecorder stands in for a test so that a helper's failure can be
// checked: Fatal and Fatalf record the message and end the goroutine, as
// testing.T's do.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) { r.msg = fmt.Sprint(args...); runtime.Goexit() }

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs f in a goroutine of its own against a fatalRecorder and
// returns the message it failed with ("" if it did not fail).
func failure(t *testing.T, f func(testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

// TestExpectFailsOnOtherLine: Expect fails the test, naming the line the
// child said, when it is not the one expected; and when the child is gone.
func TestExpectFailsOnOtherLine(t *testing.T) {
	c := testchild.Start(t, testchild.Hold(0))
	c.Send(t, "") // a ready child answers any line with its CPU time, not "ready"
	msg := failure(t, func(tb testing.TB) { c.Expect(tb, "ready") })
	if !strings.Contains(msg, "said") || !strings.Contains(msg, `"ready"`) {
		t.Errorf("Expect after a CPU-time answer failed with %q, want it to say what the child said instead of \"ready\"", msg)
	}
	if err := c.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	msg = failure(t, func(tb testing.TB) { c.Expect(tb, "ready") })
	if !strings.Contains(msg, "EOF") {
		t.Errorf("Expect from an exited child failed with %q, want EOF", msg)
	}
}

// TestBadModesRejectedUpFront: Start and Command fail the test before
// starting anything when the mode does not parse, and Start refuses Exit.
func TestBadModesRejectedUpFront(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(testing.TB)
		says string
	}{
		{"Start", func(tb testing.TB) { testchild.Start(tb, "hold") }, `mode "hold"`},
		{"Command", func(tb testing.TB) { testchild.Command(tb, "burn:0") }, `mode "burn:0"`},
		{"StartExit", func(tb testing.TB) { testchild.Start(tb, testchild.Exit) }, "Command"},
	} {
		if msg := failure(t, tc.f); !strings.Contains(msg, tc.says) {
			t.Errorf("%s failed with %q, want it to mention %q", tc.name, msg, tc.says)
		}
	}
}
