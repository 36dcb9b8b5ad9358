package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

const envRunMain = "REGION_TEST_RUN_MAIN"

const testKey = "region-test-key-0123456789"

// loopback returns ip:0, or 127.0.0.1:0 where only that is configured
// (not Linux).
func loopback(ip string) string {
	if runtime.GOOS != "linux" {
		ip = "127.0.0.1"
	}
	return ip + ":0"
}

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readAddr reads the "listening on" line and returns the URL.
func readAddr(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	_, url, ok := strings.Cut(strings.TrimSpace(line), " listening on ")
	require.True(t, ok, "unexpected first line %q", line)
	return url + "/"
}

// The region serves its demo functions to a lease's target and stops
// cleanly when its context ends.
func TestRegionServesAndStops(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-listen", loopback("127.0.0.3"), "-region", "test", "-key", testKey}, pw, &stderr)
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	url := readAddr(t, out)

	target, err := migrate.NewCloudEventsTarget("test", url, migrate.CloudEventsOptions{Region: "test", Key: []byte(testKey)})
	require.NoError(t, err)
	_, err = target.Probe(ctx)
	require.NoError(t, err)
	for i, want := range []string{"1", "2"} {
		got, err := target.Call(ctx, migrate.Request{Kind: migrate.KindInvoke, Function: "count", ID: "c" + want, Payload: []byte("hits")})
		require.NoError(t, err, "call %d", i)
		require.Equal(t, want, string(got))
	}
	got, err := target.Call(ctx, migrate.Request{Kind: migrate.KindInvoke, Function: "upper", ID: "u1", Payload: []byte("region")})
	require.NoError(t, err)
	require.Equal(t, "REGION", string(got))
	_, err = target.Call(ctx, migrate.Request{Kind: migrate.KindInvoke, Function: "count", ID: "c0"})
	var fe *migrate.FunctionError
	require.ErrorAs(t, err, &fe, "an empty counter name is the function's own error")

	cancel()
	rest, err := io.ReadAll(out)
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.Equal(t, "region test stopped\n", string(rest))
}

func TestRegionFlags(t *testing.T) {
	var out, errb bytes.Buffer
	require.ErrorContains(t, run(context.Background(), []string{"-key", testKey}, &out, &errb), "-region is required")
	require.Error(t, run(context.Background(), []string{"-bogus"}, &out, &errb))
	require.ErrorContains(t, run(context.Background(), []string{"-region", "r", "-key", "short"}, &out, &errb), "at least 16")
	require.Error(t, run(context.Background(), []string{"-region", "r", "-key", testKey, "-listen", "not-an-address"}, &out, &errb))
}

// Without a key the region still starts, on the demo key, and says so.
func TestRegionDemoKey(t *testing.T) {
	t.Setenv("UPDRAFT_KEY", "")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", loopback("127.0.0.3"), "-region", "demo"}, pw, &stderr)
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	url := readAddr(t, out)
	target, err := migrate.NewCloudEventsTarget("demo", url, migrate.CloudEventsOptions{Region: "demo", Key: []byte(DemoKey)})
	require.NoError(t, err)
	got, err := target.Call(ctx, migrate.Request{Kind: migrate.KindInvoke, Function: "upper", ID: "u", Payload: []byte("demo")})
	require.NoError(t, err)
	require.Equal(t, "DEMO", string(got))
	cancel()
	_, _ = io.ReadAll(out)
	require.NoError(t, <-done)
	require.Contains(t, stderr.String(), "using the public demo key")
}

// As a program: SIGTERM shuts it down cleanly, exit status 0.
func TestRegionExitsOnSIGTERM(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-listen", loopback("127.0.0.4"), "-region", "sig", "-key", testKey)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	out := bufio.NewReader(stdout)
	readAddr(t, out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	rest, err := io.ReadAll(out)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), "clean exit")
	require.Equal(t, "region sig stopped\n", string(rest))
}
