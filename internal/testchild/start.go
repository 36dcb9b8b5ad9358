package testchild

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Command returns an unstarted command that runs the current test binary
// in mode, with the mode in [EnvVar] and the child's stderr on the test's.
// Under the race detector the child skips its default one-second sleep at
// exit (GORACE atexit_sleep_ms=0, added to any GORACE options the test
// has), so children that exit do not slow the test down.
// Most tests want [Start]; Command is for children a test wires up itself,
// such as many sharing one stdin, or an [Exit] child run to completion.
// It fails the test if mode does not parse.
func Command(t testing.TB, mode string) *exec.Cmd {
	t.Helper()
	if _, err := parseMode(mode); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("testchild: finding the test binary: %v", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		EnvVar+"="+mode,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Stderr = os.Stderr
	return cmd
}

// Child is a running re-executed test binary started by [Start]. Its
// methods are for the goroutine of the test that started it.
type Child struct {
	cmd   *exec.Cmd
	stdin *os.File      // write end of the child's stdin
	out   *os.File      // read end of the child's stdout
	lines *bufio.Reader // reads out

	waitOnce sync.Once
	waitErr  error // of cmd.Wait, set once by Wait
}

// Start runs the current test binary in mode (see the package comment) and
// returns once the child says it is in that state: "ready", or "started"
// for a [HoldLater] child. The child is killed and reaped when the test
// ends. Start fails the test if mode does not parse, is [Exit] (use
// [Command]), or the child does not say what it should.
func Start(t testing.TB, mode string) *Child {
	t.Helper()
	m, err := parseMode(mode)
	if err != nil {
		t.Fatal(err)
	}
	if m.kind == exitMode {
		t.Fatalf("testchild: Start(%q): an exit child never says ready; run it with Command", mode)
	}
	cmd := Command(t, mode)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatalf("testchild: stdin pipe: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		t.Fatalf("testchild: stdout pipe: %v", err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close() // the child has its own copies now
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("testchild: starting %s in mode %q: %v", cmd.Path, mode, err)
	}
	c := &Child{cmd: cmd, stdin: inW, out: outR, lines: bufio.NewReader(outR)}
	t.Cleanup(func() {
		c.stdin.Close()
		c.Kill()
		c.out.Close()
	})
	c.Expect(t, m.firstLine())
	return c
}

// PID returns the child's process ID.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// ReadLine returns the child's next line of output without its newline.
// Most tests want [Child.Expect].
func (c *Child) ReadLine() (string, error) {
	line, err := c.lines.ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// Expect reads the child's next line and fails the test unless it starts
// with prefix. It returns the line without its newline.
func (c *Child) Expect(t testing.TB, prefix string) string {
	t.Helper()
	line, err := c.ReadLine()
	if err != nil {
		t.Fatalf("testchild: child %d: waiting for %q: got %q, then %v", c.PID(), prefix, line, err)
	}
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("testchild: child %d said %q, want a line starting %q", c.PID(), line, prefix)
	}
	return line
}

// WaitReady waits for the child to say "ready"; after [Child.Proceed], a
// [HoldLater] child says so once its memory is resident.
func (c *Child) WaitReady(t testing.TB) {
	t.Helper()
	c.Expect(t, "ready")
}

// Send writes line and a newline to the child's stdin.
func (c *Child) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := c.stdin.WriteString(line + "\n"); err != nil {
		t.Fatalf("testchild: child %d: writing %q: %v", c.PID(), line, err)
	}
}

// Proceed sends a [HoldLater] child the go-ahead to touch its memory. It
// does not wait: call [Child.WaitReady] for that, or read what the child
// says with [Child.ReadLine] when the kernel may kill it instead.
func (c *Child) Proceed(t testing.TB) {
	t.Helper()
	c.Send(t, "go")
}

// CPUTime asks a ready child for its own account of the CPU time it has
// used (CLOCK_PROCESS_CPUTIME_ID; Linux only) and fails the test if the
// answer is not a duration.
func (c *Child) CPUTime(t testing.TB) time.Duration {
	t.Helper()
	c.Send(t, "")
	line, err := c.ReadLine()
	if err != nil {
		t.Fatalf("testchild: child %d: no CPU time answer: %q, %v", c.PID(), line, err)
	}
	ns, err := strconv.ParseInt(line, 10, 64)
	if err != nil || ns < 0 {
		t.Fatalf("testchild: child %d answered %q for its CPU time", c.PID(), line)
	}
	return time.Duration(ns)
}

// CloseStdin closes the child's stdin, which makes a ready child exit
// with status 0; [Child.Wait] then returns nil.
func (c *Child) CloseStdin() error { return c.stdin.Close() }

// Wait waits for the child to exit and returns what [exec.Cmd.Wait] did;
// later calls return the same.
func (c *Child) Wait() error {
	c.waitOnce.Do(func() { c.waitErr = c.cmd.Wait() })
	return c.waitErr
}

// Kill kills the child, if it still runs, and reaps it, so its PID no
// longer names a process.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill() // os.ErrProcessDone once reaped: nothing to do
	_ = c.Wait()
}
