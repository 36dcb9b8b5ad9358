//go:build linux

package profile_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// childEnv selects what a re-executed test binary does instead of running
// tests: "burn" spins one CPU, "hold:N" holds N bytes of touched memory,
// "holdlater:N" does the same after a line arrives on stdin.
const childEnv = "UPDRAFT_PROFILE_CHILD"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); {
	case mode == "burn":
		childBurn()
	case strings.HasPrefix(mode, "hold:"), strings.HasPrefix(mode, "holdlater:"):
		_, size, _ := strings.Cut(mode, ":")
		n, err := strconv.Atoi(size)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad hold size:", err)
			os.Exit(2)
		}
		if strings.HasPrefix(mode, "holdlater:") {
			// Wait to be moved into a cgroup before touching memory,
			// so the pages are charged to it.
			fmt.Println("started")
			bufio.NewReader(os.Stdin).ReadString('\n')
		}
		childHold(n)
	default:
		os.Exit(m.Run())
	}
}

// childBurn spins one goroutine on one thread; every line read from stdin
// is answered with the process's CPU time in nanoseconds, its own account
// of what it used. It exits when stdin closes.
func childBurn() {
	go func() {
		runtime.LockOSThread()
		x := 0
		for {
			x++
		}
	}()
	answerCPU()
}

// childHold maps n bytes outside the Go heap (so neither the garbage
// collector nor the race detector's shadow memory changes the figure),
// writes every page so they are resident, says "ready" and waits for
// stdin to close.
func childHold(n int) {
	if n > 0 {
		buf, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mmap:", err)
			os.Exit(2)
		}
		for i := 0; i < len(buf); i += os.Getpagesize() {
			buf[i] = 1
		}
		defer runtime.KeepAlive(buf)
	}
	fmt.Println("ready")
	answerCPU()
}

func answerCPU() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(processCPUTime().Nanoseconds())
	}
	os.Exit(0)
}

// processCPUTime reads CLOCK_PROCESS_CPUTIME_ID.
func processCPUTime() time.Duration {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return -1
	}
	return time.Duration(ts.Nano())
}

// child is a running re-executed test binary.
type child struct {
	cmd *exec.Cmd
	in  *os.File
	out *bufio.Scanner
}

func startChild(t testing.TB, mode string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	c := &child{cmd: cmd, in: inW, out: bufio.NewScanner(outR)}
	t.Cleanup(func() {
		c.in.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		outR.Close()
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitReady blocks until the child prints "ready".
func (c *child) waitReady(t testing.TB) { c.waitFor(t, "ready") }

// waitFor blocks until the child prints line.
func (c *child) waitFor(t testing.TB, line string) {
	t.Helper()
	if !c.out.Scan() || c.out.Text() != line {
		t.Fatalf("child %d did not say %q: %q %v", c.pid(), line, c.out.Text(), c.out.Err())
	}
}

// proceed sends the child the line holdlater waits for.
func (c *child) proceed(t testing.TB) {
	t.Helper()
	if _, err := c.in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
}

// cpuTime asks the child for its own CPU time.
func (c *child) cpuTime(t testing.TB) time.Duration {
	t.Helper()
	if _, err := c.in.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	if !c.out.Scan() {
		t.Fatalf("child %d: no answer: %v", c.pid(), c.out.Err())
	}
	n, err := strconv.ParseInt(c.out.Text(), 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("child %d answered %q", c.pid(), c.out.Text())
	}
	return time.Duration(n)
}
