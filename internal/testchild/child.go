package testchild

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
)

// EnvVar is the environment variable that tells a re-executed test binary
// which mode to run instead of its tests. Empty or unset means run the
// tests.
const EnvVar = "UPDRAFT_TESTCHILD"

// Main is the whole of a TestMain: it runs the tests and exits with their
// status, unless [EnvVar] names a mode, in which case it runs that mode
// (see the package comment) and exits with status 0 when the child's
// stdin closes, or 2 when the mode cannot be parsed or set up.
//
// Main never returns.
func Main(m *testing.M) {
	s := os.Getenv(EnvVar)
	if s == "" {
		os.Exit(m.Run())
	}
	os.Exit(runChild(s, os.Stdin, os.Stdout, os.Stderr))
}

// runChild runs the child named by s and returns its exit status.
func runChild(s string, stdin io.Reader, stdout, stderr io.Writer) int {
	m, err := parseMode(s)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	in := bufio.NewScanner(stdin)
	var held []byte
	switch m.kind {
	case exitMode:
		return 0
	case burnMode:
		burn(m.n)
	case holdLaterMode:
		fmt.Fprintln(stdout, "started")
		if !in.Scan() {
			return 0 // the parent went away before the go-ahead
		}
		fallthrough
	case holdMode:
		held, err = touchedMemory(m.n)
		if err != nil {
			fmt.Fprintf(stderr, "testchild: mode %q: %v\n", s, err)
			return 2
		}
	}
	fmt.Fprintln(stdout, "ready")
	for in.Scan() {
		answerCPUTime(stdout)
	}
	runtime.KeepAlive(held)
	return 0
}

// burn starts threads goroutines that spin, each locked to an OS thread of
// its own, and gives the runtime one more P than that so the goroutine
// answering stdin is not queued behind them. The spinners stop when the
// process exits.
func burn(threads int) {
	runtime.GOMAXPROCS(threads + 1)
	for range threads {
		go func() {
			runtime.LockOSThread()
			x := 0
			for {
				x++
			}
		}()
	}
}
