package migrate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/migrate"
)

// Environment of a child region process (the test binary re-executed).
const (
	envRegionIP  = "MIGRATE_TEST_REGION_IP"
	envRegionKey = "MIGRATE_TEST_REGION_KEY"
	envRegionFns = "MIGRATE_TEST_REGION_FUNCS"
)

var testKey = []byte("updraft-test-key-0123456789abcdef")

func TestMain(m *testing.M) {
	if ip := os.Getenv(envRegionIP); ip != "" {
		os.Exit(serveChildRegion(ip))
	}
	if addr := os.Getenv(envFFAddr); addr != "" {
		os.Exit(serveFunctionsFramework(addr))
	}
	if cfg := os.Getenv(envLeaseChild); cfg != "" {
		os.Exit(runLeaseChild(cfg))
	}
	os.Exit(m.Run())
}

// serveChildRegion serves count functions on ip:0, prints the address on
// stdout, and exits when stdin closes (the parent died or is done) or
// when killed.
func serveChildRegion(ip string) int {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: []byte(os.Getenv(envRegionKey))})
	for _, fn := range strings.Split(os.Getenv(envRegionFns), ",") {
		st := &migrate.MapState{}
		h.Register(fn, count(st), st)
	}
	ln, err := listenLoopback(ip)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = http.Serve(ln, h) }()
	fmt.Printf("%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// listenLoopback listens on ip (a 127.0.0.x address, one per region), or
// on 127.0.0.1 where only that is configured (not Linux).
func listenLoopback(ip string) (net.Listener, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil && runtime.GOOS != "linux" {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	return ln, err
}

// count is the stateful test function: it adds one to the counter named
// by the payload and returns the new value.
func count(st *migrate.MapState) migrate.Func {
	return func(_ context.Context, payload []byte) ([]byte, error) {
		if len(payload) == 0 {
			return nil, errors.New("empty counter name")
		}
		return strconv.AppendInt(nil, st.Add(string(payload), 1), 10), nil
	}
}

// childRegion is a region in a process of its own, which a test can kill.
type childRegion struct {
	url string
	cmd *exec.Cmd
}

func startChildRegion(t *testing.T, ip string, funcs ...string) *childRegion {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRegionIP+"="+ip, envRegionKey+"="+string(testKey), envRegionFns+"="+strings.Join(funcs, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child region on %s: reading its address: %v", ip, err)
	}
	return &childRegion{url: "http://" + strings.TrimSpace(line) + "/", cmd: cmd}
}

// kill ends the region's process abruptly, as a region outage would.
func (c *childRegion) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Errorf("kill region: %v", err)
	}
}

// region is an in-process region: a Handler on its own 127.0.0.x address.
type region struct {
	url string
	h   *migrate.Handler
	srv *http.Server
}

func startRegion(t testing.TB, ip string, h http.Handler) *region {
	t.Helper()
	ln, err := listenLoopback(ip)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r := &region{url: "http://" + ln.Addr().String() + "/", srv: srv}
	r.h, _ = h.(*migrate.Handler)
	return r
}

func newTarget(t testing.TB, name, url string, opts migrate.CloudEventsOptions) *migrate.CloudEventsTarget {
	t.Helper()
	if opts.Region == "" {
		opts.Region = name
	}
	ct, err := migrate.NewCloudEventsTarget(name, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func newMover(t testing.TB, targets []migrate.Target, opts migrate.Options) *migrate.Mover {
	t.Helper()
	if opts.BufferDir == "" {
		opts.BufferDir = t.TempDir()
	}
	if opts.Key == nil {
		opts.Key = testKey
	}
	m, err := migrate.New(targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
