//go:build unix

package updraft

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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

// hostProcs follows the test hosts of one test: the first is started by the
// test, the others by self-updates; each says "ready ..." on the stdout
// they share.
type hostProcs struct {
	t     *testing.T
	lines chan map[string]string
	first *exec.Cmd
	dir   string
}

// startHost starts version 1 of the test host and waits until it serves.
func startHost(t *testing.T, env ...string) (*hostProcs, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	cfg, _ := json.Marshal(hostConfig{Dir: dir, Addr: "127.0.0.1:0"})
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), hostEnv+"="+string(cfg), "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &hostProcs{t: t, lines: make(chan map[string]string, 16), first: cmd, dir: dir}
	var pids sync.Map
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fields := map[string]string{}
			words := strings.Fields(sc.Text())
			if len(words) == 0 {
				continue
			}
			fields["event"] = words[0]
			for _, w := range words[1:] {
				k, v, _ := strings.Cut(w, "=")
				fields[k] = v
			}
			if pid, err := strconv.Atoi(fields["pid"]); err == nil {
				pids.Store(pid, true)
			}
			h.lines <- fields
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		pids.Range(func(k, _ any) bool {
			_ = syscall.Kill(k.(int), syscall.SIGKILL)
			return true
		})
		_ = cmd.Wait()
	})
	return h, h.next("ready")
}

// next returns the next line of kind event.
func (h *hostProcs) next(event string) map[string]string {
	h.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-h.lines:
			require.True(h.t, ok, "the test hosts' output ended while waiting for %q", event)
			if l["event"] == event {
				return l
			}
		case <-timeout:
			h.t.Fatalf("no %q line from the test hosts", event)
		}
	}
}

// client is a data-plane client that changes sessions continuously and
// remembers what the data plane answered.
type client struct {
	addr     string
	http     *http.Client
	mu       sync.Mutex
	want     map[string]int64 // what each session's counter must be
	sent     atomic.Int64
	failed   atomic.Int64
	lastErr  atomic.Value
	stop     chan struct{}
	stopped  chan struct{}
	sessions int
}

func newClient(addr string, sessions int) *client {
	return &client{addr: addr, http: &http.Client{Timeout: 10 * time.Second}, want: map[string]int64{}, sessions: sessions,
		stop: make(chan struct{}), stopped: make(chan struct{})}
}

// bump increments session id and records the answer; a request that got
// no answer is a failure, and its effect is unknown.
func (c *client) bump(id string) error {
	c.sent.Add(1)
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.addr+"/s/"+id, nil)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d", id, c.sent.Load()))
	resp, err := c.http.Do(req)
	if err != nil {
		c.failed.Add(1)
		c.lastErr.Store(err.Error())
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n, err := strconv.ParseInt(string(body), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		c.failed.Add(1)
		c.lastErr.Store(resp.Status + " " + string(body))
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	c.mu.Lock()
	c.want[id] = n
	c.mu.Unlock()
	return nil
}

func (c *client) run() {
	defer close(c.stopped)
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		default:
		}
		_ = c.bump("s" + strconv.Itoa(i%c.sessions))
	}
}

func (c *client) halt() { close(c.stop); <-c.stopped }

func (c *client) get(path string) (string, error) {
	resp, err := c.http.Get("http://" + c.addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// check asserts that every session holds what the data plane last answered.
func (c *client) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Len(t, c.want, c.sessions)
	for id, n := range c.want {
		got, err := c.get("/s/" + id)
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatInt(n, 10), got, "session %s", id)
	}
}

func postUpdate(t *testing.T, admin, query string) hostReport {
	t.Helper()
	resp, err := http.Post("http://"+admin+"/update"+query, "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var rep hostReport
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	return rep
}

func TestSelfUpdateCommits(t *testing.T) {
	h, v1 := startHost(t)
	c := newClient(v1["data"], 20)
	for i := 0; i < 20; i++ {
		require.NoError(t, c.bump("s"+strconv.Itoa(i)))
	}
	go c.run()
	rep := postUpdate(t, v1["admin"], "")
	require.Equal(t, "committed", rep.Outcome, rep.Text+rep.Err)
	v2 := h.next("ready")
	assert.Equal(t, "2", v2["version"])
	pid, err := strconv.Atoi(v2["pid"])
	require.NoError(t, err)
	checkWarmedBack(t, rep.Text, pid)
	h.next("exit") // the old process hands over and exits
	c.halt()
	assert.Zero(t, c.failed.Load(), "critical requests failed: %v", c.lastErr.Load())
	got, err := c.get("/version")
	require.NoError(t, err)
	assert.Equal(t, "2", got)
	c.check(t)
	// The new process finished the update: the journal is gone.
	assert.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(h.dir, "journal", JournalRecord))
		return os.IsNotExist(err)
	}, 10*time.Second, 20*time.Millisecond)
	t.Logf("%d requests, the old process's report:\n%s", c.sent.Load(), rep.Text)
}

func TestSelfUpdateRollsBackWhenValidationFails(t *testing.T) {
	h, v1 := startHost(t)
	c := newClient(v1["data"], 20)
	for i := 0; i < 20; i++ {
		require.NoError(t, c.bump("s"+strconv.Itoa(i)))
	}
	go c.run()
	rep := postUpdate(t, v1["admin"], "?fail=health")
	require.Equal(t, "rolled back", rep.Outcome, rep.Text)
	assert.Contains(t, rep.Err, "version 2 is broken", "the report says why")
	v2 := h.next("ready")
	assert.Equal(t, "2", v2["version"])
	h.next("exit") // the new process hands the state back and exits
	c.halt()
	assert.Zero(t, c.failed.Load(), "critical requests failed: %v", c.lastErr.Load())
	got, err := c.get("/version")
	require.NoError(t, err)
	assert.Equal(t, "1", got, "the old process serves again")
	c.check(t)
	t.Logf("%d requests; report:\n%s", c.sent.Load(), rep.Text)
}

func TestSelfUpdateNewProcessCrashesAtStart(t *testing.T) {
	_, v1 := startHost(t)
	c := newClient(v1["data"], 10)
	for i := 0; i < 10; i++ {
		require.NoError(t, c.bump("s"+strconv.Itoa(i)))
	}
	go c.run()
	rep := postUpdate(t, v1["admin"], "?fail=start")
	c.halt()
	require.Equal(t, "rolled back", rep.Outcome, rep.Text)
	assert.Contains(t, rep.Err, "the new process did not start")
	assert.Zero(t, c.failed.Load(), "critical requests failed: %v", c.lastErr.Load())
	got, err := c.get("/version")
	require.NoError(t, err)
	assert.Equal(t, "1", got)
	c.check(t)
}

func TestSelfUpdateOldProcessCrashesWhileValidating(t *testing.T) {
	h, v1 := startHost(t, crashEnv+"=validate")
	c := newClient(v1["data"], 10)
	for i := 0; i < 10; i++ {
		require.NoError(t, c.bump("s"+strconv.Itoa(i)))
	}
	go c.run()
	go func() { _, _ = http.Post("http://"+v1["admin"]+"/update", "", nil) }() // the old process dies answering it
	v2 := h.next("ready")
	assert.Equal(t, "2", v2["version"])
	// Version 2 is not validated: it hands back to the previous version,
	// which finishes the update with Resume.
	back := h.next("ready")
	assert.Equal(t, "1", back["version"])
	assert.Equal(t, "none", back["resumed"])
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(h.dir, "journal", JournalRecord))
		return os.IsNotExist(err)
	}, 20*time.Second, 20*time.Millisecond, "Resume finished the update")
	c.halt()
	got, err := c.get("/version")
	require.NoError(t, err)
	assert.Equal(t, "1", got)
	c.check(t)
	assert.Zero(t, c.failed.Load(), "critical requests failed: %v", c.lastErr.Load())
}
