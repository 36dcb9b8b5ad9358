package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// Return after the window: state that changed remotely is back locally.
func TestReturnBringsRemoteStateHome(t *testing.T) {
	reg, remote := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{})
	home := &migrate.MapState{}
	home.Add("seed", 1)
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		out, err := lease.Invoke(ctx, "count", []byte("x"))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(out))
	}
	require.Equal(t, int64(0), home.Get("x"), "while away, the work happens remotely")
	require.Equal(t, int64(3), remote.Get("x"))
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, map[string]int64{"seed": 1, "x": 3}, home.Snapshot())
	require.Equal(t, "r1", lease.Placements()[0].Target)
}

func TestInvokeErrors(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{MaxPayloadBytes: 8})
	ctx := ctxT(t)
	home := &migrate.MapState{}
	lease, err := m.Migrate(ctx, "", []migrate.Spec{
		{Function: "count", Local: count(home), State: home},
		{Function: "fail", Local: noop},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, lease.Return(ctx)) }()

	_, err = lease.Invoke(ctx, "nope", nil)
	require.ErrorIs(t, err, migrate.ErrUnknownFunction)
	require.ErrorContains(t, err, `"nope" is not part of lease`)

	_, err = lease.Invoke(ctx, "count", []byte("123456789"))
	require.ErrorIs(t, err, migrate.ErrPayloadTooLarge)
	require.ErrorContains(t, err, "9 bytes, limit 8")

	_, err = lease.Invoke(ctx, "fail", []byte("x"))
	var fe *migrate.FunctionError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "boom", fe.Message)
	require.Equal(t, "r1", fe.Target)

	_, err = lease.Invoke(ctx, "count", []byte("") /* the function refuses */)
	require.ErrorAs(t, err, &fe)

	out, err := lease.Invoke(ctx, "count", []byte("ok"))
	require.NoError(t, err, "the function keeps working after bad input")
	require.Equal(t, "1", string(out))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = lease.Invoke(cancelled, "count", []byte("ok"))
	require.ErrorIs(t, err, context.Canceled)
}

// gatedTarget refuses every call as unreachable while closed, and reports
// each refusal.
type gatedTarget struct {
	migrate.Target
	mu      sync.Mutex
	closed  bool
	refused chan struct{}
}

func (g *gatedTarget) setClosed(c bool) {
	g.mu.Lock()
	g.closed = c
	g.mu.Unlock()
}

func (g *gatedTarget) Call(ctx context.Context, req migrate.Request) ([]byte, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		select {
		case g.refused <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("%w: gate closed", migrate.ErrUnreachable)
	}
	return g.Target.Call(ctx, req)
}

// listState is a State that records payloads in order.
type listState struct {
	mu   sync.Mutex
	list []string
}

func (l *listState) add(_ context.Context, p []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, string(p))
	return nil, nil
}

func (l *listState) Export(_ context.Context, w io.Writer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return json.NewEncoder(w).Encode(l.list)
}

func (l *listState) Import(_ context.Context, r io.Reader) error {
	var list []string
	if err := json.NewDecoder(r).Decode(&list); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = list
	return nil
}

// While the target is unreachable, invocations wait in the on-disk
// buffer and are replayed in order; past the bound they are refused and
// counted, never dropped silently.
func TestUnreachableTargetBuffersInOrder(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	remote := &listState{}
	h.Register("append", remote.add, remote)
	reg := startRegion(t, "127.0.0.2", h)
	gate := &gatedTarget{Target: newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{Key: testKey}), refused: make(chan struct{})}
	dir := t.TempDir()
	const record = 12 + 2 + 4 // header, two-byte payload, checksum
	m := newMover(t, []migrate.Target{gate}, migrate.Options{BufferDir: dir, BufferBytes: 3 * record,
		FailoverAfter: time.Minute, RetryMax: 10 * time.Millisecond})
	home := &listState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "append", Local: home.add, State: home}})
	require.NoError(t, err)

	gate.setClosed(true)
	for i := 1; i <= 3; i++ {
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := lease.Invoke(wctx, "append", fmt.Appendf(nil, "i%d", i))
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "stays buffered")
	}
	_, err = lease.Invoke(ctx, "append", []byte("i4"))
	require.ErrorIs(t, err, migrate.ErrBufferFull, "the bound is reached")
	require.Equal(t, int64(1), lease.Stats().Overflow)
	registry := prometheus.NewRegistry()
	require.NoError(t, registry.Register(m.Collector()))
	families, err := registry.Gather()
	require.NoError(t, err)
	overflow := -1.0
	for _, f := range families {
		if f.GetName() == "updraft_migrate_buffer_overflow_total" {
			overflow = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, 1.0, overflow, "overflow is counted in the metrics too")
	require.Equal(t, int64(3), lease.Stats().Buffered)

	<-gate.refused // a refusal after all three were buffered: the buffer was flushed before its retry
	<-gate.refused
	segs, err := filepath.Glob(filepath.Join(dir, "updraft-lease-*", "0", "seg-*.log"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	fi, err := os.Stat(segs[0])
	require.NoError(t, err)
	require.Equal(t, int64(3*record), fi.Size(), "the waiting invocations are on disk")

	gate.setClosed(false)
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, []string{"i1", "i2", "i3"}, home.list, "delivered once each, in order; i4 was refused, not queued")
	st := lease.Stats()
	require.Positive(t, st.Retries)
	require.Zero(t, st.Failovers)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "Return removes the lease's buffer")
}

// When the only target dies, the function comes home in degraded mode with
// its last checkpoint and a replay of the buffer; nothing is lost or
// applied twice.
func TestFailoverHomeWhenNoTargetLeft(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})},
		migrate.Options{CheckpointEvery: 10, FailoverAfter: 100 * time.Millisecond})
	home := &migrate.MapState{}
	home.Add("seed", 1)
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	invoke := func(from, to int) {
		for i := from; i < to; i++ {
			out, err := lease.Invoke(ctx, "count", fmt.Appendf(nil, "k%d", i))
			require.NoError(t, err, "invocation %d", i)
			require.Equal(t, "1", string(out), "invocation %d", i)
		}
	}
	invoke(0, 25)
	require.NoError(t, reg.srv.Close())
	invoke(25, 50)
	p := lease.Placements()[0]
	require.Equal(t, "home", p.Target)
	require.Contains(t, p.Reason, "failed over from r1")
	require.Contains(t, p.Reason, "degraded mode")
	st := lease.Stats()
	require.Equal(t, int64(1), st.Failovers)
	require.Equal(t, int64(5), st.Replayed, "k20..k24 were after the last checkpoint")
	require.Contains(t, m.Unhealthy(), "r1", "the Mover remembers the dead target")
	require.NoError(t, lease.Return(ctx))
	got := home.Snapshot()
	require.Len(t, got, 51)
	for k, v := range got {
		require.Equal(t, map[bool]int64{true: 1, false: 1}[k == "seed"], v, k)
	}
}

// A target that is gone at Return: the state comes home from the last
// checkpoint plus a local replay of the buffer.
func TestReturnWithDeadTargetReplaysFromCheckpoint(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})},
		migrate.Options{CheckpointEvery: 10, FailoverAfter: 100 * time.Millisecond})
	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	for i := range 25 {
		_, err := lease.Invoke(ctx, "count", fmt.Appendf(nil, "k%d", i))
		require.NoError(t, err)
	}
	require.NoError(t, reg.srv.Close())
	require.NoError(t, lease.Return(ctx))
	got := home.Snapshot()
	require.Len(t, got, 25)
	for k, v := range got {
		require.Equal(t, int64(1), v, k)
	}
	require.Equal(t, int64(5), lease.Stats().Replayed)
}

// On a LocalTarget the state stays home; when it goes down the function
// fails over to the next target.
func TestLocalTargets(t *testing.T) {
	a := migrate.NewLocalTarget("a", migrate.LocalOptions{Slots: 1})
	b := migrate.NewLocalTarget("b", migrate.LocalOptions{CostPerMillion: 1})
	m := newMover(t, []migrate.Target{a, b}, migrate.Options{FailoverAfter: 50 * time.Millisecond})
	home := &countingState{}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	block := func(ctx context.Context, p []byte) ([]byte, error) {
		entered <- struct{}{}
		<-release
		return []byte("done"), nil
	}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{
		{Function: "count", Local: count(&home.MapState), State: home},
		{Function: "block", Local: block},
	})
	require.NoError(t, err)
	require.Equal(t, "a", lease.Placements()[0].Target)

	out, err := lease.Invoke(ctx, "count", []byte("x"))
	require.NoError(t, err)
	require.Equal(t, "1", string(out))
	require.Equal(t, int64(1), home.Get("x"), "in-process: the state never left")

	// Slots bound what runs at once: while block holds a's only slot, count waits.
	blockDone := make(chan error, 1)
	go func() { _, err := lease.Invoke(ctx, "block", nil); blockDone <- err }()
	<-entered
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = lease.Invoke(wctx, "count", []byte("y"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, int64(0), home.Get("y"), "no free slot, so it has not run")
	close(release)
	require.NoError(t, <-blockDone)

	a.SetDown(true)
	_, err = lease.Invoke(ctx, "count", []byte("z"))
	require.NoError(t, err)
	require.Equal(t, "b", lease.Placements()[0].Target)
	require.Contains(t, lease.Placements()[0].Reason, "failed over from a")
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, map[string]int64{"x": 1, "y": 1, "z": 1}, home.Snapshot(), "y ran once after the slot freed")
	require.Zero(t, home.imports.Load(), "nothing to bring home from an in-process target")
	require.NoError(t, lease.Return(ctx))
	_, err = lease.Invoke(ctx, "nope", nil)
	require.True(t, errors.Is(err, migrate.ErrUnknownFunction))
}

// swappable serves whichever handler it holds now, to restart a region in
// place.
type swappable struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

func countHandler() *migrate.Handler {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	st := &migrate.MapState{}
	h.Register("count", count(st), st)
	return h
}

// A region that restarts and comes back empty is not trusted with the
// function again: the generation check refuses the request, and the
// function fails over with its last checkpoint — nothing is lost.
func TestRestartedRegionIsDetected(t *testing.T) {
	sw := &swappable{h: countHandler()}
	r1 := startRegion(t, "127.0.0.2", sw)
	r2, _ := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{
		newTarget(t, "r1", r1.url, migrate.CloudEventsOptions{CostPerMillion: 1}),
		newTarget(t, "r2", r2.url, migrate.CloudEventsOptions{CostPerMillion: 2}),
	}, migrate.Options{CheckpointEvery: 10})
	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	for i := range 30 {
		if i == 15 {
			sw.mu.Lock()
			sw.h = countHandler() // restarted: same address, empty state
			sw.mu.Unlock()
		}
		out, err := lease.Invoke(ctx, "count", fmt.Appendf(nil, "k%d", i))
		require.NoError(t, err)
		require.Equal(t, "1", string(out))
	}
	p := lease.Placements()[0]
	require.Equal(t, "r2", p.Target)
	require.Contains(t, p.Reason, "state generation mismatch")
	require.NoError(t, lease.Return(ctx))
	got := home.Snapshot()
	require.Len(t, got, 30)
	for k, v := range got {
		require.Equal(t, int64(1), v, k)
	}
}

// A Return whose ctx ends while invocations are still waiting for an
// unreachable target fails; a later Return finishes the job.
func TestReturnRetriesAfterFailure(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	gate := &gatedTarget{Target: newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{Key: testKey}), refused: make(chan struct{})}
	m := newMover(t, []migrate.Target{gate}, migrate.Options{FailoverAfter: time.Minute, RetryMax: 10 * time.Millisecond})
	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	gate.setClosed(true)
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = lease.Invoke(wctx, "count", []byte("late"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	<-gate.refused

	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = lease.Return(rctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "draining in-flight invocations")

	gate.setClosed(false)
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, int64(1), home.Get("late"), "the buffered invocation ran once and its effect came home")
	out, err := lease.Invoke(ctx, "count", []byte("late"))
	require.NoError(t, err)
	require.Equal(t, "2", string(out), "now at home")
}

// Uncancellable callers deliver inline; many at once share one delivery
// token with the worker, and every invocation still runs exactly once.
func TestConcurrentInlineInvocations(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{CheckpointEvery: 16})
	home := &migrate.MapState{}
	lease, err := m.Migrate(ctxT(t), "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				out, err := lease.Invoke(context.Background(), "count", fmt.Appendf(nil, "g%d-%d", g, i))
				if err != nil || string(out) != "1" {
					t.Errorf("g%d-%d: %q, %v", g, i, out, err)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, lease.Return(ctxT(t)))
	got := home.Snapshot()
	require.Len(t, got, 800)
	for k, v := range got {
		require.Equal(t, int64(1), v, k)
	}
	require.Equal(t, int64(800), lease.Stats().Invocations)
}

// Concurrent callers' invocations of one function travel together, up to
// MaxInFlight: four callers meet inside the remote function at once.
func TestWindowDeliversConcurrently(t *testing.T) {
	const n = 4
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	meet := func(ctx context.Context, p []byte) ([]byte, error) {
		arrived.Done()
		select {
		case <-all:
			return p, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("meet", meet, nil)
	reg := startRegion(t, "127.0.0.2", h)
	m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{MaxInFlight: n})
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "meet", Local: meet}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := lease.Invoke(ctx, "meet", fmt.Appendf(nil, "%d", i))
			if err != nil || string(out) != fmt.Sprint(i) {
				t.Errorf("caller %d: %q, %v", i, out, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, lease.Return(ctx))
}

// flakyInProcess is an in-process target whose call for "k1" waits until
// released and then fails, taking the target down with it.
type flakyInProcess struct {
	k1Arrived, release chan struct{}
	down               atomic.Bool
}

func (f *flakyInProcess) Info() migrate.TargetInfo {
	return migrate.TargetInfo{Name: "spare", Region: "local", Provider: "local", InProcess: true}
}

func (f *flakyInProcess) Probe(context.Context) (time.Duration, error) {
	if f.down.Load() {
		return 0, errors.New("down")
	}
	return 0, nil
}

func (f *flakyInProcess) Call(ctx context.Context, req migrate.Request) ([]byte, error) {
	if string(req.Payload) == "k1" && !f.down.Load() {
		close(f.k1Arrived)
		<-f.release
		f.down.Store(true)
	}
	if f.down.Load() {
		return nil, fmt.Errorf("%w: spare is down", migrate.ErrUnreachable)
	}
	return req.Local(ctx, req.Payload)
}

// Answers from an in-process target can arrive out of order (k2 before
// k1). When the function then moves to a region with an export of the live
// state, and that region dies too, the replay onto that export must not
// apply k2 a second time.
func TestOutOfOrderAnswersSurviveTwoFailovers(t *testing.T) {
	spare := &flakyInProcess{k1Arrived: make(chan struct{}), release: make(chan struct{})}
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	remote := newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{CostPerMillion: 1})
	m := newMover(t, []migrate.Target{spare, remote}, migrate.Options{MaxInFlight: 4, FailoverAfter: 100 * time.Millisecond})
	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	require.Equal(t, "spare", lease.Placements()[0].Target)

	k1 := make(chan error, 1)
	go func() { _, err := lease.Invoke(ctx, "count", []byte("k1")); k1 <- err }()
	<-spare.k1Arrived
	_, err = lease.Invoke(ctx, "count", []byte("k2")) // answered while k1 is still out
	require.NoError(t, err)
	close(spare.release) // k1 fails; spare is down; count moves to r1 with an export holding k2
	require.NoError(t, <-k1)
	require.Equal(t, "r1", lease.Placements()[0].Target)

	require.NoError(t, reg.srv.Close()) // r1 dies too: home, degraded
	_, err = lease.Invoke(ctx, "count", []byte("k3"))
	require.NoError(t, err)
	require.Equal(t, "home", lease.Placements()[0].Target)
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, map[string]int64{"k1": 1, "k2": 1, "k3": 1}, home.Snapshot())
}

// callSignal reports each call a target receives.
type callSignal struct {
	migrate.Target
	calls chan struct{}
}

func (c *callSignal) Call(ctx context.Context, req migrate.Request) ([]byte, error) {
	if req.Kind == migrate.KindInvoke {
		c.calls <- struct{}{}
	}
	return c.Target.Call(ctx, req)
}

// An attempt that gets no answer within CallTimeout is retried under the
// same idempotency key; the region runs the function once and the retry
// gets its answer.
func TestSlowAnswerIsRetriedNotLost(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	slow := func(context.Context, []byte) ([]byte, error) {
		runs.Add(1)
		<-release
		return []byte("done"), nil
	}
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("slow", slow, nil)
	reg := startRegion(t, "127.0.0.2", h)
	sig := &callSignal{Target: newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{Key: testKey}), calls: make(chan struct{}, 16)}
	m := newMover(t, []migrate.Target{sig}, migrate.Options{CallTimeout: 50 * time.Millisecond, FailoverAfter: time.Minute})
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "slow", Local: slow}})
	require.NoError(t, err)
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = lease.Invoke(ctx, "slow", []byte("x"))
		done <- err
	}()
	<-sig.calls
	<-sig.calls // the first attempt timed out; this is its retry
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, "done", string(out))
	require.Equal(t, int32(1), runs.Load(), "the retry did not run the function again")
	require.Positive(t, lease.Stats().Retries)
	require.NoError(t, lease.Return(ctx))
}

// When a target turns bad mid-lease, the function regains its work at
// home, with its state, and the placement says why. (A target that
// accepts with a 2xx CloudEvent of an unexpected type is not "bad": the
// invocation counts as applied, see TestTargetBadAnswers.)
func TestBadTargetMidLeaseWorkComesHome(t *testing.T) {
	garbage := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>oops</html>")) })
	skewedKey := migrate.NewHandler(migrate.HandlerOptions{Key: testKey, Clock: func() time.Time { return time.Now().Add(time.Hour) }})
	forgetful := migrate.NewHandler(migrate.HandlerOptions{Key: testKey}) // hosts nothing
	for _, tc := range []struct {
		name string
		bad  http.Handler
		why  string
	}{
		{"garbage", garbage, "not a CloudEvent"},
		{"clock skew", skewedKey, "clocks skewed"},
		{"unknown function", forgetful, "not registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &swappable{h: countHandler()}
			reg := startRegion(t, "127.0.0.2", sw)
			m := newMover(t, []migrate.Target{newTarget(t, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{CheckpointEvery: 2})
			home := &migrate.MapState{}
			ctx := ctxT(t)
			lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
			require.NoError(t, err)
			for _, k := range []string{"a", "b", "c"} {
				_, err := lease.Invoke(ctx, "count", []byte(k))
				require.NoError(t, err)
			}
			sw.mu.Lock()
			sw.h = tc.bad
			sw.mu.Unlock()
			out, err := lease.Invoke(ctx, "count", []byte("a"))
			require.NoError(t, err)
			require.Equal(t, "2", string(out), "served at home, on the state that came back")
			p := lease.Placements()[0]
			require.Equal(t, "home", p.Target)
			require.Contains(t, p.Reason, tc.why)
			require.NoError(t, lease.Return(ctx))
			require.Equal(t, map[string]int64{"a": 2, "b": 1, "c": 1}, home.Snapshot())
		})
	}
}
