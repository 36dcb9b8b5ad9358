package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary plays the data plane when serveEnv is set: the tests
// run it as a real process and update it with a new "binary" (itself).
const serveEnv = "DATAPLANE_TEST_SERVE"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := run(ctx, strings.Fields(args), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "dataplane:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testFlows is the background flows the test's data plane starts with.
const testFlows = 5000

// TestUpdatesKeepRoutesAndSessions runs the data plane as a real process,
// with a client bumping sessions throughout, and updates it twice: to a
// version that passes validation (it takes over, with every session) and
// to one that fails it (the old process keeps serving, nothing lost, and
// the report says why).
func TestUpdatesKeepRoutesAndSessions(t *testing.T) {
	dir := t.TempDir()
	addr, err := freeAddr("127.0.0.1")
	require.NoError(t, err)
	admin, err := freeAddr("127.0.0.1")
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=-addr "+addr+" -admin "+admin+" -dir "+dir+" -flows "+strconv.Itoa(testFlows), roleEnv+"="+roleUpdraft, versionEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	type readyLine struct {
		version, device string
		pid             int
	}
	ready := make(chan readyLine, 8)
	var (
		pidsMu sync.Mutex
		pids   []int
	)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) == 0 || f[0] != "ready" {
				continue
			}
			var r readyLine
			for _, w := range f {
				k, v, _ := strings.Cut(w, "=")
				switch k {
				case "pid":
					r.pid, _ = strconv.Atoi(v)
				case "version":
					r.version = v
				case "device":
					r.device = v
				case "cgroup":
					r.device += " cgroup=" + v
				}
			}
			pidsMu.Lock()
			pids = append(pids, r.pid)
			pidsMu.Unlock()
			ready <- r
		}
	}()
	first := <-ready
	require.Equal(t, "1", first.version)
	cgroup, onLinux := strings.CutPrefix(first.device, "linux cgroup=")
	t.Cleanup(func() {
		// Stopped as a host stops it, so that the data plane that serves
		// last leaves and removes its cgroup.
		pidsMu.Lock()
		defer pidsMu.Unlock()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		_ = cmd.Wait()
		assert.Eventually(t, func() bool {
			for _, pid := range pids {
				if running(pid) {
					return false
				}
			}
			return true
		}, 30*time.Second, 10*time.Millisecond, "the data plane stops on SIGTERM")
		if onLinux {
			dir := filepath.Join("/sys/fs/cgroup/memory", cgroup)
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				dir = filepath.Join("/sys/fs/cgroup", cgroup)
			}
			_, err := os.Stat(dir)
			assert.True(t, os.IsNotExist(err), "the cgroup %s is removed when the last data plane stops (stat: %v)", dir, err)
		}
	})
	if os.Geteuid() == 0 {
		// As root (CI) the data plane runs on hal/linux, in its own cgroup.
		require.True(t, onLinux, "as root the device is hal/linux, not %q", first.device)
	}
	t.Logf("device: %s", first.device)

	client := &http.Client{Timeout: 10 * time.Second}
	acked := map[string]int64{}
	var mu sync.Mutex
	var failed atomic.Int64
	bump := func(id string) {
		body, err := do(client, http.MethodPost, "http://"+addr+"/session/"+id)
		n, perr := strconv.ParseInt(body, 10, 64)
		if err != nil || perr != nil {
			failed.Add(1)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Greater(t, n, acked[id], "session %s went back", id)
		acked[id] = n
	}
	for i := range 20 {
		bump(fmt.Sprint("s", i))
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			bump(fmt.Sprint("s", i%20))
		}
	}()
	update := func(query string) (outcome, why, report string) {
		resp, err := client.Post("http://"+admin+"/update"+query, "", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var rep struct{ Outcome, Err, Report string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
		return rep.Outcome, rep.Err, rep.Report
	}
	outcome, why, report := update("")
	require.Equal(t, "committed", outcome, "%s\n%s", why, report)
	second := <-ready
	require.Equal(t, "2", second.version, "version 2 took over")
	assert.Equal(t, first.device, second.device, "the new process serves from the cgroup it inherited")
	if onLinux {
		own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", second.pid))
		require.NoError(t, err)
		assert.Contains(t, string(own), cgroup, "version 2 runs in the data plane's cgroup")
	}
	// Version 2 finishes the update (brings the moved functions home,
	// undoes the partition); its report says when.
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + admin + "/report")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rep struct{ Outcome string }
		return json.NewDecoder(resp.Body).Decode(&rep) == nil && rep.Outcome == "committed"
	}, 30*time.Second, 20*time.Millisecond, "version 2 finished the update")
	t.Logf("after the commit: %v", func() map[string]int64 { mu.Lock(); defer mu.Unlock(); return maps.Clone(acked) }())
	outcome, why, report = update("?broken=1")
	t.Logf("rolled-back update's report:\n%s", report)
	assert.Equal(t, "rolled back", outcome, report)
	assert.Contains(t, why, "version 3 is broken", "the report says why")
	close(stop)
	<-stopped

	assert.Zero(t, failed.Load(), "critical requests failed")
	v, err := do(client, http.MethodGet, "http://"+addr+"/version")
	require.NoError(t, err)
	assert.Equal(t, "2", v, "after the failed update the version that passed serves")
	hop, err := do(client, http.MethodGet, "http://"+addr+"/route?dst=10.1.2.3")
	require.NoError(t, err)
	assert.Equal(t, "eth1", hop)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range acked {
		body, err := do(client, http.MethodGet, "http://"+addr+"/session/"+id)
		require.NoError(t, err)
		got, err := strconv.ParseInt(body, 10, 64)
		require.NoError(t, err)
		// No acknowledged write is lost, and none is counted twice: a
		// bump retried by the client after its connection closed before
		// the answer carries the same Idempotency-Key and is answered, not
		// counted again.
		assert.Equal(t, n, got, "session %s: the data plane holds %d, its last answer was %d", id, got, n)
	}
	kept, err := do(client, http.MethodGet, "http://"+addr+"/flows?n="+strconv.Itoa(testFlows))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(testFlows), kept, "background flows kept across both updates")
}

// TestRetriedBumpIsCountedOnce: a bump repeated with its Idempotency-Key
// (the client's retry of a request whose answer was lost) is answered with
// the count it already got; another key counts again.
func TestRetriedBumpIsCountedOnce(t *testing.T) {
	p, err := newPlane("1")
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.track("s", "k1"))
	assert.Equal(t, int64(1), p.track("s", "k1"), "the retry is not counted")
	assert.Equal(t, int64(2), p.track("s", "k2"))
	assert.Equal(t, int64(3), p.track("s", ""), "no key: always counted")
	assert.Equal(t, int64(4), p.track("s", ""))
	// The key travels with the count through the container's codec, so a
	// retry that reaches the process that took over is recognised there.
	b, err := sessionCodec.Append(nil, session{N: 7, Key: "k9"})
	require.NoError(t, err)
	got, err := sessionCodec.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, session{N: 7, Key: "k9"}, got)
	_, err = sessionCodec.Decode(nil)
	assert.Error(t, err)
}

// FuzzSessionCodec: the session codec decodes what it encodes, and any
// other input is decoded or refused without a panic.
func FuzzSessionCodec(f *testing.F) {
	f.Add(int64(0), "")
	f.Add(int64(-5), "key")
	f.Add(int64(1<<62), "k\x00\xff")
	f.Fuzz(func(t *testing.T, n int64, key string) {
		b, err := sessionCodec.Append(nil, session{N: n, Key: key})
		require.NoError(t, err)
		got, err := sessionCodec.Decode(b)
		require.NoError(t, err)
		require.Equal(t, session{N: n, Key: key}, got)
		_, _ = sessionCodec.Decode([]byte(key))
	})
}

// running reports whether process pid is alive (neither gone nor a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// TestDeviceChoice: -device sim gives hal/sim and says why; -device linux
// as a user who cannot manage cgroups is refused rather than simulated;
// a bad -device value is refused naming the flag.
func TestDeviceChoice(t *testing.T) {
	functions := []string{"route"}
	d, err := openDevice(config{device: "sim", dir: t.TempDir()}, false, functions)
	require.NoError(t, err)
	assert.Equal(t, "sim (-device_sim)", d.what)
	assert.Empty(t, d.cgroup)
	if os.Geteuid() != 0 {
		_, err := openDevice(config{device: "linux", dir: t.TempDir()}, false, functions)
		assert.Error(t, err, "hal/linux without root")
		d, err := openDevice(config{device: "auto", dir: t.TempDir()}, false, functions)
		require.NoError(t, err)
		assert.Contains(t, d.what, "sim (not_root")
	}
	err = run(context.Background(), []string{"-device", "gpu"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, `flag -device: "gpu"`)
}

// TestTimelineLaysOutTheWorstLatency: -timeline's worst critical latency
// per 20 ms of due time counts only successful critical requests due from
// 60 ms before the trigger to 1 s after it, each in its own 20 ms.
func TestTimelineLaysOutTheWorstLatency(t *testing.T) {
	trigger := time.Now()
	at := func(offset, latency time.Duration, critical, ok bool) sample {
		start := trigger.Add(offset)
		return sample{start: start, end: start.Add(latency), critical: critical, ok: ok}
	}
	l := &load{samples: []sample{
		at(-70*time.Millisecond, 50*time.Millisecond, true, true), // before the window
		at(-50*time.Millisecond, time.Millisecond, true, true),
		at(5*time.Millisecond, 7*time.Millisecond, true, true),
		at(25*time.Millisecond, 3*time.Millisecond, true, true),
		at(30*time.Millisecond, 9*time.Millisecond, true, true),
		at(35*time.Millisecond, 40*time.Millisecond, false, true), // non-critical
		at(36*time.Millisecond, 40*time.Millisecond, true, false), // failed
		at(979*time.Millisecond, 2*time.Millisecond, true, true),  // the last 20 ms
		at(2*time.Second, 30*time.Millisecond, true, true),        // after the window
	}}
	r := l.result("updraft", trigger, trigger.Add(500*time.Millisecond), "127.0.0.1:1", 0)
	line := r.latencies()
	for _, want := range []string{"updraft   worst critical latency (ms) by 20 ms of due time from the trigger: -60:1.0 -40:0.0 -20:0.0 0:7.0 20:9.0 40:0.0", " 960:2.0"} {
		if !strings.Contains(line, want) {
			t.Errorf("timeline %q lacks %q", line, want)
		}
	}
	if n := strings.Count(line, ":") - 1; n != 53 {
		t.Errorf("timeline has %d points, want 53 (-60 ms to 980 ms)", n)
	}
}
