package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
		ctx, stop := context.WithCancel(context.Background())
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
	pids := make(chan int, 8)
	lines := bufio.NewScanner(out)
	ready := make(chan string, 8)
	go func() {
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			for _, w := range f {
				if v, ok := strings.CutPrefix(w, "pid="); ok && f[0] == "ready" {
					n, _ := strconv.Atoi(v)
					pids <- n
				}
				if v, ok := strings.CutPrefix(w, "version="); ok && f[0] == "ready" {
					ready <- v
				}
			}
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case pid := <-pids:
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			default:
				_ = cmd.Wait()
				return
			}
		}
	})
	require.Equal(t, "1", <-ready)

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
	require.Equal(t, "2", <-ready, "version 2 took over")
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
