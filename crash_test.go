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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/linux"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/internal/testchild"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// The crash matrix: a child process runs an update and is killed with
// SIGKILL at one point of it; a fresh child process over the same store,
// journal, device and buffer directory runs Resume; the parent checks what
// is left. The points are every hook point an update passes (every phase's
// start, every journal write, every compensation's start and end) plus
// points in the middle of the phases that write: the snapshot's stream,
// the device's Apply, the host's Apply, a lease's Return.

const crashChildEnv = "UPDRAFT_TEST_CRASH_CHILD" // JSON crashConfig

type crashConfig struct {
	Dir         string `json:"dir"`
	Mode        string `json:"mode"`   // "points", "update", "resume"
	KillAt      string `json:"killAt"` // the point to die at ("" runs to the end)
	Fail        bool   `json:"fail"`   // the new version fails validation
	Region      string `json:"region"` // the region's endpoint
	Invocations int    `json:"invocations"`
	Quota       int    `json:"quota"` // invocations acknowledged before each point is passed
	// Linux, when set, puts the critical function on real cgroups with
	// hal/linux (as root): the process Bound is moved into a cgroup
	// created under Parent.
	Linux *crashLinux `json:"linux,omitempty"`
}

type crashLinux struct {
	Parent string `json:"parent"`
	Bound  int    `json:"bound"`
}

// crashStatus is what a child reports after Resume.
type crashStatus struct {
	Outcome  string                    `json:"outcome"`
	Err      string                    `json:"err"`
	Report   string                    `json:"report"`
	Sessions map[string]int64          `json:"sessions"`
	Counter  map[string]int64          `json:"counter"`  // invocation id → effects at home
	Degraded []string                  `json:"degraded"` // functions still reduced
	Device   map[string]hal.Allocation `json:"device"`   // what the device holds
	Journal  bool                      `json:"journal"`  // a journal remains
	Leases   []string                  `json:"leases"`   // lease directories left
	Points   []string                  `json:"points"`
}

// counterState is the counting function's state: how many times each
// invocation id took effect. Every change is written through to a file so
// that effects at home outlive a kill.
type counterState struct {
	mu    sync.Mutex
	path  string
	kill  func(point string)
	count map[string]int64
}

func openCounter(path string, kill func(string)) (*counterState, error) {
	c := &counterState{path: path, kill: kill, count: map[string]int64{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	return c, json.Unmarshal(b, &c.count)
}

func (c *counterState) persistLocked() error {
	b, err := json.Marshal(c.count)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

func (c *counterState) invoke(_ context.Context, payload []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[string(payload)]++
	return payload, c.persistLocked()
}

func (c *counterState) Export(_ context.Context, w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.NewEncoder(w).Encode(c.count)
}

func (c *counterState) Import(_ context.Context, r io.Reader) error {
	var m map[string]int64
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	c.kill("return:import")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count = m
	return c.persistLocked()
}

func (c *counterState) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.count)
}

// crashHost is one child process's host: the same functions, store,
// journal, device and buffer directory in every process of a cell.
type crashHost struct {
	cfg      crashConfig
	o        *Orchestrator
	sessions *sessionTable
	counter  *counterState
	dev      hal.Device
	simDev   *sim.Device // nil on real cgroups
	store    *snapshot.FileStore
	acks     *os.File
	rolled   string // file the host's Rollback appends to

	mu     sync.Mutex
	points []string
	acked  int
	ackCh  chan struct{} // signalled on each acknowledgement
}

// kill ends this process at once if point is the one it must die at.
func (h *crashHost) kill(point string) {
	h.mu.Lock()
	h.points = append(h.points, point)
	h.mu.Unlock()
	if point == h.cfg.KillAt {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// at is the Orchestrator's hook: before passing a point the update waits
// until a further share of the invocations is acknowledged, so that they
// are in flight at every point; then it may die there.
func (h *crashHost) at(point string) {
	h.mu.Lock()
	want := min(h.cfg.Invocations, (len(h.points)+1)*h.cfg.Quota)
	h.mu.Unlock()
	for {
		h.mu.Lock()
		enough := h.acked >= want
		h.mu.Unlock()
		if enough {
			break
		}
		select {
		case <-h.ackCh:
		case <-time.After(2 * time.Second):
			// Invocations may wait for this very phase (a lease being
			// returned): go on rather than deadlock.
			h.mu.Lock()
			want = h.acked
			h.mu.Unlock()
		}
	}
	h.kill(point)
}

// seedSessions is the critical state every process starts with (what a
// data plane loads from its configuration); traffic before the update
// changes it to trafficSessions, which the snapshot captures.
func seedSessions() map[string]int64    { return map[string]int64{"a": 1, "b": 2, "c": 3} }
func trafficSessions() map[string]int64 { return map[string]int64{"a": 5, "b": 2, "c": 3, "d": 1} }

func openCrashHost(cfg crashConfig) (*crashHost, error) {
	h := &crashHost{cfg: cfg, sessions: &sessionTable{rows: seedSessions()}, rolled: filepath.Join(cfg.Dir, "rolled"),
		ackCh: make(chan struct{}, 1)}
	var err error
	if h.acks, err = os.OpenFile(filepath.Join(cfg.Dir, "acks"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return nil, err
	}
	if h.counter, err = openCounter(filepath.Join(cfg.Dir, "counter.json"), h.kill); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "store"), 0o755); err != nil {
		return nil, err
	}
	if h.store, err = snapshot.NewFileStore(filepath.Join(cfg.Dir, "store"), snapshot.FileStoreOptions{}); err != nil {
		return nil, err
	}
	if l := cfg.Linux; l != nil {
		if h.dev, err = linux.New(linux.Config{Parent: l.Parent, Bindings: []linux.Binding{{Function: "sessions", PIDs: []int{l.Bound}}}}); err != nil {
			return nil, err
		}
	} else {
		if h.simDev, err = sim.Open(sim.Config{Capacity: hal.Vector{hal.CPU: 4}, StatePath: filepath.Join(cfg.Dir, "device.json")}); err != nil {
			return nil, err
		}
		h.dev = h.simDev
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "leases"), 0o755); err != nil {
		return nil, err
	}
	target, err := migrate.NewCloudEventsTarget("region", cfg.Region, migrate.CloudEventsOptions{Region: "eu", Key: crashKey})
	if err != nil {
		return nil, err
	}
	mover, err := migrate.New([]migrate.Target{target}, migrate.Options{BufferDir: filepath.Join(cfg.Dir, "leases"), CheckpointEvery: 16})
	if err != nil {
		return nil, err
	}
	fns := []Function{
		{Name: "sessions", Criticality: Critical, EntryPoint: true, State: &killingSource{h.sessions, h.kill}, RestoreAfterUpdate: true,
			Demand: hal.Vector{hal.CPU: 1}},
		{Name: "counter", Criticality: NonCritical, Func: h.counter.invoke, Demand: hal.Vector{hal.CPU: 8},
			Remote: &Remote{State: h.counter}},
		{Name: "log", Criticality: NonCritical, Demand: hal.Vector{hal.CPU: 8}, Degrade: &degrade.Policy{Mode: degrade.Disable}},
	}
	h.o, err = New(fns, h.dev, Options{Store: h.store, Migrator: Mover(mover), Window: time.Minute, Holder: fmt.Sprintf("crash child %d", os.Getpid()),
		Profiler: profile.Static{Demand: map[string]hal.Vector{"sessions": {hal.CPU: 1}, "counter": {hal.CPU: 8}, "log": {hal.CPU: 8}}},
		Checks: []validate.Check{validate.Func("new version healthy", func(context.Context) error {
			if cfg.Fail {
				return errors.New("the new version answers 500")
			}
			return nil
		})}})
	if err != nil {
		return nil, err
	}
	h.o.hook = h.at
	return h, nil
}

var crashKey = []byte("updraft-crash-matrix-key-0123456")

// killingSource dies in the middle of writing its snapshot stream when
// told to.
type killingSource struct {
	*sessionTable
	kill func(string)
}

func (s *killingSource) Capture(ctx context.Context) (snapshot.View, error) {
	v, err := s.sessionTable.Capture(ctx)
	if err != nil {
		return nil, err
	}
	return killingView{v.(sessionView), s.kill}, nil
}

type killingView struct {
	sessionView
	kill func(string)
}

func (v killingView) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(v.sessionView)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b[:len(b)/2])
	if err != nil {
		return int64(n), err
	}
	v.kill("snapshot:mid-write")
	m, err := w.Write(b[len(b)/2:])
	return int64(n + m), err
}

// update is the host's update: Apply changes the critical state (the new
// version's table) and dies half-way when told to; Rollback records that
// it ran.
func (h *crashHost) update() Update {
	return UpdateFuncs{
		ApplyFunc: func(ctx context.Context) error {
			h.sessions.add("a")
			h.kill("update:mid-apply")
			h.sessions.add("v2")
			return nil
		},
		RollbackFunc: func(ctx context.Context) error {
			f, err := os.OpenFile(h.rolled, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("rolled back\n")
			return err
		},
	}
}

// invoke sends the invocations of the counting function, each with an id
// of its own, from four goroutines, and appends each acknowledged id to
// the acks file (a write(2) each: the kernel keeps it across SIGKILL).
func (h *crashHost) invoke(ctx context.Context) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(h.cfg.Invocations); i = next.Add(1) {
				id := "inv-" + strconv.FormatInt(i, 10)
				if _, err := h.o.Invoke(ctx, "counter", []byte(id)); err != nil {
					continue // not acknowledged: its effect may or may not exist
				}
				h.mu.Lock()
				_, _ = h.acks.WriteString(id + "\n")
				h.acked++
				h.mu.Unlock()
				select {
				case h.ackCh <- struct{}{}:
				default:
				}
			}
		})
	}
	wg.Wait()
}

// runCrashChild is the child's main.
func runCrashChild(raw string) int {
	var cfg crashConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	h, err := openCrashHost(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	ctx := context.Background()
	var status crashStatus
	var report *Report
	switch cfg.Mode {
	case "update":
		h.sessions.mu.Lock()
		h.sessions.rows = trafficSessions()
		h.sessions.mu.Unlock()
		invoked := make(chan struct{})
		go func() { h.invoke(ctx); close(invoked) }()
		report, err = h.o.PrepareForUpdate(ctx, h.update())
		<-invoked
	case "resume":
		h.o.hook = nil
		report, err = h.o.Resume(ctx, h.update())
	case "hold":
		// An update whose Apply waits, holding the update lock, until
		// the parent closes stdin.
		h.o.hook = nil
		report, err = h.o.PrepareForUpdate(ctx, UpdateFuncs{
			ApplyFunc: func(context.Context) error {
				fmt.Println("applying")
				_, _ = io.Copy(io.Discard, os.Stdin)
				return nil
			},
			RollbackFunc: func(context.Context) error { return nil },
		})
	default:
		fmt.Fprintln(os.Stderr, "crash child: unknown mode", cfg.Mode)
		return 2
	}
	if report != nil {
		status.Outcome, status.Report = string(report.Outcome), report.String()
	}
	if err != nil {
		status.Err = err.Error()
	}
	h.mu.Lock()
	status.Points = h.points
	h.mu.Unlock()
	status.Counter = h.counter.snapshot()
	h.sessions.mu.Lock()
	status.Sessions = maps.Clone(h.sessions.rows)
	h.sessions.mu.Unlock()
	if c, ok := h.o.Degrader().(*degrade.Controller); ok {
		for _, s := range c.Status() {
			status.Degraded = append(status.Degraded, s.Function)
		}
	}
	if h.simDev != nil {
		status.Device = h.simDev.Allocations()
	}
	if _, err := h.store.GetRecord(ctx, JournalRecord); err == nil {
		status.Journal = true
	}
	status.Leases, _ = filepath.Glob(filepath.Join(cfg.Dir, "leases", "updraft-lease-*"))
	_ = json.NewEncoder(os.Stdout).Encode(status)
	return 0
}

// crashChildRun runs one child process to its end (or its death) and
// returns its status, or killed when it died of SIGKILL.
func crashChildRun(t *testing.T, cfg crashConfig) (status *crashStatus, killed bool) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw), "GORACE=atexit_sleep_ms=0")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil, true
		}
	}
	require.NoError(t, err, "child %s: %s", cfg.Mode, errOut.String())
	status = &crashStatus{}
	require.NoError(t, json.Unmarshal(out, status), "child %s printed %q", cfg.Mode, out)
	return status, false
}

// TestSecondProcessIsRefusedNamingTheHolder: while a child process runs
// an update, an Orchestrator in this process over the same file store is
// refused with ErrUpdateInProgress naming the child; once the child is
// done, this one updates.
func TestSecondProcessIsRefusedNamingTheHolder(t *testing.T) {
	dir := t.TempDir()
	cfg := crashConfig{Dir: dir, Mode: "hold", Region: crashRegion(t)}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := json.NewDecoder(stdout)
	var line string
	_, err = fmt.Fscanln(io.MultiReader(stdout), &line) // "applying": the child holds the lock
	require.NoError(t, err)
	require.Equal(t, "applying", line)

	cfg.Mode = "update"
	h, err := openCrashHost(cfg)
	require.NoError(t, err)
	_, err = h.o.PrepareForUpdate(context.Background(), h.update())
	require.ErrorIs(t, err, ErrUpdateInProgress)
	assert.Contains(t, err.Error(), fmt.Sprintf("crash child %d", cmd.Process.Pid), "the error names the holder")

	require.NoError(t, stdin.Close()) // the child's Apply returns; its update commits
	var st crashStatus
	require.NoError(t, out.Decode(&st))
	require.NoError(t, cmd.Wait())
	require.Equal(t, string(Committed), st.Outcome, st.Err)
	report, err := h.o.PrepareForUpdate(context.Background(), h.update())
	require.NoError(t, err, report.String())
}

// crashRegion is the migration target: a Handler in this (the parent)
// process, which outlives the children, holding the counting function's
// state while it is away.
func crashRegion(t *testing.T) string {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: crashKey})
	st := &migrate.MapState{}
	h.Register("counter", func(_ context.Context, p []byte) ([]byte, error) { st.Add(string(p), 1); return p, nil }, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func readAcks(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "acks"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// TestCrashMatrix: for an update that commits and one that fails
// validation, a child process is SIGKILLed at every point of the update
// (every hook point, and in the middle of the snapshot's stream, the
// host's Apply and a lease's return), with invocations of a counting
// function in flight; a fresh child runs Resume. Afterwards the device
// holds what it held before, the journal and every lease are gone, no
// function is reduced, every acknowledged invocation took effect exactly
// once and none twice, and the critical state is the snapshot's (or the
// fresh process's own when the kill came before the snapshot).
func TestCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash matrix runs about 100 processes")
	}
	crashMatrix(t, nil)
}

// TestCrashMatrixOnRealCgroups is the matrix with the critical function's
// process bound by hal/linux on the machine's cgroups: after Resume the
// process is back in its own cgroups and the cgroups the update created
// are gone. It needs root (CI runs it as root).
func TestCrashMatrixOnRealCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("real cgroups need root (CI runs this as root)")
	}
	if testing.Short() {
		t.Skip("the crash matrix runs about 100 processes")
	}
	bound := testchild.Start(t, testchild.Hold(1<<20))
	crashMatrix(t, func(t *testing.T) (*crashLinux, func(t *testing.T)) {
		l := &crashLinux{Parent: "updraft-crash-" + randomHex(4), Bound: bound.PID()}
		home := procCgroups(t, l.Bound)
		return l, func(t *testing.T) {
			assert.Equal(t, home, procCgroups(t, l.Bound), "the bound process is back in its own cgroups")
			for _, c := range []string{"cpu", "memory", "cpuset"} {
				_, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, l.Parent))
				assert.True(t, errors.Is(err, os.ErrNotExist), "cgroup %s/%s is gone (%v)", c, l.Parent, err)
			}
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", l.Parent)) // cgroup v2
			assert.True(t, errors.Is(err, os.ErrNotExist))
		}
	})
}

// procCgroups is /proc/pid/cgroup.
func procCgroups(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	return string(b)
}

// crashMatrix runs the matrix; onLinux, when set, gives each cell its
// real-cgroup configuration and a check of what it left.
func crashMatrix(t *testing.T, onLinux func(t *testing.T) (*crashLinux, func(t *testing.T))) {
	const invocations = 1000
	for _, fail := range []bool{false, true} {
		scenario := map[bool]string{false: "commit", true: "fail"}[fail]
		// A run to the end lists the points, in order.
		dir := t.TempDir()
		region := crashRegion(t)
		var refLinux *crashLinux
		if onLinux != nil {
			refLinux, _ = onLinux(t)
		}
		ref, killed := crashChildRun(t, crashConfig{Dir: dir, Mode: "update", Fail: fail, Region: region, Invocations: invocations, Quota: 1, Linux: refLinux})
		require.False(t, killed)
		require.Equal(t, fail, ref.Err != "", "scenario %s: %s %s", scenario, ref.Err, ref.Report)
		points := ref.Points
		require.GreaterOrEqual(t, len(points), 20, "%s: too few crash points: %v", scenario, points)
		quota := invocations / len(points)
		snapAt := slices.Index(points, "snapshot:journaled")
		validatedAt := slices.Index(points, "validate:journaled")
		require.Positive(t, snapAt)
		for i, point := range points {
			t.Run(scenario+"/"+point, func(t *testing.T) {
				dir := t.TempDir()
				region := crashRegion(t)
				cfg := crashConfig{Dir: dir, Mode: "update", KillAt: point, Fail: fail, Region: region, Invocations: invocations, Quota: quota}
				var checkLinux func(t *testing.T)
				if onLinux != nil {
					cfg.Linux, checkLinux = onLinux(t)
				}
				_, killed := crashChildRun(t, cfg)
				require.True(t, killed, "the child never reached %q", point)
				acked := readAcks(t, dir)

				cfg.Mode, cfg.KillAt = "resume", ""
				st, killed := crashChildRun(t, cfg)
				require.False(t, killed)
				require.Empty(t, st.Err, st.Report)
				switch {
				case !fail && validatedAt >= 0 && i >= validatedAt:
					assert.Equal(t, string(Committed), st.Outcome, st.Report)
				default:
					assert.Contains(t, []string{string(RolledBack), string(Aborted)}, st.Outcome, st.Report)
				}
				assert.Empty(t, st.Device, "the device holds what it held before")
				assert.False(t, st.Journal, "the journal is gone")
				assert.Empty(t, st.Leases, "no function is left remote")
				assert.Empty(t, st.Degraded, "no function is reduced")
				for _, id := range acked {
					assert.Equal(t, int64(1), st.Counter[id], "acknowledged invocation %s", id)
				}
				for id, n := range st.Counter {
					assert.Equal(t, int64(1), n, "invocation %s took effect %d times", id, n)
				}
				want := seedSessions()
				if i >= snapAt {
					want = trafficSessions()
				}
				if diff := cmp.Diff(want, st.Sessions); diff != "" {
					t.Errorf("critical state (-want +got):\n%s", diff)
				}
				if checkLinux != nil {
					checkLinux(t)
				}
				// Resume again: nothing is left to do.
				again, _ := crashChildRun(t, cfg)
				assert.Equal(t, string(NothingToResume), again.Outcome)
				t.Logf("%d acknowledged before the kill, %d effects after Resume", len(acked), len(st.Counter))
			})
		}
	}
}
