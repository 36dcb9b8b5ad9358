package updraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/internal/testchild"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// The tests of this package re-execute the test binary as a small data
// plane ("test host") when hostEnv is set: a session table served over
// HTTP, with a self-update, so that a swap of the running program can be
// tested with real processes.
const (
	hostEnv    = "UPDRAFT_TEST_HOST"    // JSON hostConfig
	versionEnv = "UPDRAFT_TEST_VERSION" // the version this process plays
	failEnv    = "UPDRAFT_TEST_FAIL"    // "health": this version fails validation; "start": it crashes at start
	crashEnv   = "UPDRAFT_TEST_CRASH"   // "validate": the old process dies while validating
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(hostEnv); cfg != "" {
		os.Exit(runTestHost(cfg))
	}
	if cfg := os.Getenv(crashChildEnv); cfg != "" {
		os.Exit(runCrashChild(cfg))
	}
	testchild.Main(m) // runs the tests, or a testchild mode (a bound process)
}

type hostConfig struct {
	Dir  string `json:"dir"`  // store and journal
	Addr string `json:"addr"` // the data-plane listener
}

// sessionTable is a test state source: counters by session, with a delta
// view (what differs from a base view) so that the hand-over's delta path
// runs. Like any data plane whose clients retry, it remembers by session
// the idempotency key of the last request that counted: an HTTP client
// retries a request that carries an Idempotency-Key when its connection
// closes before the answer, which a server closing an idle connection (as
// a drain does) can cause just as the request arrives, so the first
// attempt may have counted already.
type sessionTable struct {
	mu   sync.Mutex
	rows map[string]int64
	keys map[string]string // the last counted request's key, by session
}

// sessionView is a capture of a sessionTable. In a delta, a deleted row is
// -1 and a deleted key "".
type sessionView struct {
	Rows map[string]int64  `json:"rows"`
	Keys map[string]string `json:"keys,omitempty"`
}

func (v sessionView) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

// WriteDeltaTo writes the rows and keys that differ from base.
func (v sessionView) WriteDeltaTo(w io.Writer, base snapshot.View) (int64, error) {
	b, ok := base.(sessionView)
	if !ok {
		return 0, fmt.Errorf("base is a %T", base)
	}
	d := sessionView{Rows: map[string]int64{}, Keys: map[string]string{}}
	for k, n := range v.Rows {
		if old, ok := b.Rows[k]; !ok || old != n {
			d.Rows[k] = n
		}
	}
	for k := range b.Rows {
		if _, ok := v.Rows[k]; !ok {
			d.Rows[k] = -1
		}
	}
	for k, key := range v.Keys {
		if b.Keys[k] != key {
			d.Keys[k] = key
		}
	}
	for k := range b.Keys {
		if _, ok := v.Keys[k]; !ok {
			d.Keys[k] = ""
		}
	}
	return d.WriteTo(w)
}

func (t *sessionTable) Capture(context.Context) (snapshot.View, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sessionView{Rows: maps.Clone(t.rows), Keys: maps.Clone(t.keys)}, nil
}

func (t *sessionTable) Restore(_ context.Context, r io.Reader) error {
	var v sessionView
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		return err
	}
	if v.Rows == nil {
		v.Rows = map[string]int64{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows, t.keys = v.Rows, v.Keys
	return nil
}

func (t *sessionTable) ApplyDelta(_ context.Context, r io.Reader) error {
	var d sessionView
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, n := range d.Rows {
		if n < 0 {
			delete(t.rows, k)
			continue
		}
		t.rows[k] = n
	}
	for k, key := range d.Keys {
		if key == "" {
			delete(t.keys, k)
			continue
		}
		if t.keys == nil {
			t.keys = map[string]string{}
		}
		t.keys[k] = key
	}
	return nil
}

func (t *sessionTable) add(k string) int64 { return t.addOnce(k, "") }

// addOnce counts one request of session k, unless key is the key of the
// request that counted last: a retry is answered again, not counted.
func (t *sessionTable) addOnce(k, key string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if key != "" && t.keys[k] == key {
		return t.rows[k]
	}
	t.rows[k]++
	if key != "" {
		if t.keys == nil {
			t.keys = map[string]string{}
		}
		t.keys[k] = key
	}
	return t.rows[k]
}

func (t *sessionTable) get(k string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.rows[k]
	return n, ok
}

// runTestHost is the test host's main.
func runTestHost(raw string) int {
	var cfg hostConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "test host:", err)
		return 2
	}
	version := os.Getenv(versionEnv)
	if version == "" {
		version = "1"
	}
	if os.Getenv(failEnv) == "start" {
		fmt.Fprintln(os.Stderr, "test host: version", version, "crashes at start")
		return 3
	}
	if err := serveTestHost(cfg, version); err != nil {
		fmt.Fprintln(os.Stderr, "test host:", err)
		return 1
	}
	return 0
}

func serveTestHost(cfg hostConfig, version string) error {
	ctx := context.Background()
	up, err := NewSelfUpdate(SelfUpdateOptions{ReadyTimeout: 30 * time.Second, DrainTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	ln, err := up.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	sessions := &sessionTable{rows: map[string]int64{}}
	data := http.NewServeMux()
	data.HandleFunc("POST /s/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, sessions.addOnce(r.PathValue("id"), r.Header.Get("Idempotency-Key")))
	})
	data.HandleFunc("GET /s/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := sessions.get(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, n)
	})
	data.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, version) })
	data.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv(failEnv) == "health" {
			http.Error(w, "version "+version+" is broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	srv := &http.Server{Handler: data}
	up.HTTP(srv)

	journal, err := newFileJournal(filepath.Join(cfg.Dir, "journal"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "snapshots"), 0o755); err != nil {
		return err
	}
	store, err := snapshot.NewFileStore(filepath.Join(cfg.Dir, "snapshots"), snapshot.FileStoreOptions{})
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	health := validate.Func("health", func(ctx context.Context) error {
		if os.Getenv(crashEnv) == "validate" {
			fmt.Fprintln(os.Stderr, "test host: the old process dies while validating")
			os.Exit(9)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
	orch, err := New([]Function{
		{Name: "sessions", Criticality: Critical, EntryPoint: true, State: sessions, Demand: hal.Vector{hal.CPU: 0.25}},
		{Name: "log", Criticality: NonCritical, Demand: hal.Vector{hal.CPU: 0.25}},
	}, sim.New(hal.Vector{hal.CPU: 2}), Options{Store: store, Journal: journal, Checks: []validate.Check{health}, Window: time.Minute})
	if err != nil {
		return err
	}

	admin := http.NewServeMux()
	admin.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		next, _ := strconv.Atoi(version)
		up.opts.Env = []string{versionEnv + "=" + strconv.Itoa(next+1), failEnv + "=" + r.URL.Query().Get("fail")}
		report, err := orch.PrepareForUpdate(r.Context(), up)
		out := hostReport{Outcome: string(report.Outcome), Text: report.String()}
		if err != nil {
			out.Err = err.Error()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	admin.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		out := hostReport{}
		if rep := up.Report(); rep != nil {
			out = hostReport{Outcome: string(rep.Outcome), Text: rep.String()}
			if rep.Err != nil {
				out.Err = rep.Err.Error()
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	adminSrv := &http.Server{Handler: admin}
	go adminSrv.Serve(adminLn)
	go srv.Serve(ln)

	report, err := up.Start(ctx, orch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test host: start:", err)
	}
	outcome := "none"
	if report != nil {
		outcome = strings.ReplaceAll(string(report.Outcome), " ", "-")
	}
	fmt.Printf("ready version=%s pid=%d data=%s admin=%s resumed=%s\n", version, os.Getpid(), addr, adminLn.Addr(), outcome)
	<-up.Done()
	shut, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	_ = adminSrv.Shutdown(shut)
	fmt.Printf("exit version=%s pid=%d\n", version, os.Getpid())
	return nil
}

type hostReport struct {
	Outcome string `json:"outcome"`
	Err     string `json:"err"`
	Text    string `json:"text"`
}

// fileJournal is a JournalStore over files, for the test host.
//
// TODO(lead): the test host uses snapshot.FileStore's records once they land.
type fileJournal struct{ dir string }

func newFileJournal(dir string) (*fileJournal, error) {
	return &fileJournal{dir: dir}, os.MkdirAll(dir, 0o755)
}

func (j *fileJournal) PutRecord(_ context.Context, name string, data []byte) error {
	tmp := filepath.Join(j.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(j.dir, name))
}

func (j *fileJournal) GetRecord(_ context.Context, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(j.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("record %s: %w", name, snapshot.ErrNotFound)
	}
	return b, err
}

func (j *fileJournal) DeleteRecord(_ context.Context, name string) error {
	err := os.Remove(filepath.Join(j.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
