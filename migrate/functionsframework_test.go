package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/migrate/cesdk"
)

// The Functions Framework for Go (github.com/GoogleCloudPlatform/
// functions-framework-go) as a migration target. Its v1.9.2 exposes no
// http.Handler: funcframework.StartHostPort registers the functions in a
// process-wide registry and serves them itself, until the process ends.
// So the framework runs in a child process (the test binary re-executed,
// see TestMain), which the test can kill like a crashed instance, and
// start again on the same address like the platform's next instance.

// Environment of a Functions Framework child process.
const (
	envFFAddr    = "MIGRATE_TEST_FF_ADDR"    // host:port to serve on
	envFFEffects = "MIGRATE_TEST_FF_EFFECTS" // the counting function's effects file
)

// ffCounter is the counting function as a Functions Framework CloudEvent
// function, written the way SPEC.md asks a receiver to be: it verifies
// the signature, and takes each invocation's effect once per id. The
// effect is one line "<id>\n" appended to the file at path in a single
// write, which is also its deduplication record, so an effect and its
// record cannot be separated by a crash; a new instance reads the file
// back. Events other than invocations (the lease's probe) are
// acknowledged and have no effect. The framework's CloudEvent function
// returns only an error, so it can never answer an invocation: HTTP 200
// without an event.
func ffCounter(path string, key []byte) (func(context.Context, cloudevents.Event) error, error) {
	seen := map[string]bool{}
	if b, err := os.ReadFile(path); err == nil {
		for _, id := range strings.Split(string(b), "\n") {
			seen[id] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	return func(_ context.Context, ev cloudevents.Event) error {
		if err := cesdk.Verify(key, &ev, time.Now(), time.Minute); err != nil {
			return cloudevents.NewHTTPResult(http.StatusUnauthorized, "%v", err)
		}
		if ev.Type() != migrate.EventInvoke {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[ev.ID()] {
			return nil // a repeat of an invocation that took effect
		}
		if _, err := f.WriteString(ev.ID() + "\n"); err != nil {
			return err // HTTP 500: the lease retries
		}
		seen[ev.ID()] = true
		return nil
	}, nil
}

// ffUpper is a Functions Framework CloudEvent function whose callers need
// an answer. The framework cannot carry one in its HTTP response, so the
// function posts it, as SPEC.md section 2a says, to the invocation's
// updraftreplyto address: an event of type dev.updraft.result.v1 whose
// updraftreq is the invocation's id, its data the payload in upper case,
// signed with cesdk.Sign, sent with the cloudevents SDK's client. Each
// invocation's effect (its id, appended to the file at path) is taken
// once; a repeat is answered again without a second effect.
func ffUpper(path string, key []byte) func(context.Context, cloudevents.Event) error {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(ctx context.Context, ev cloudevents.Event) error {
		if err := cesdk.Verify(key, &ev, time.Now(), time.Minute); err != nil {
			return cloudevents.NewHTTPResult(http.StatusUnauthorized, "%v", err)
		}
		if ev.Type() != migrate.EventInvoke {
			return nil
		}
		replyTo, _ := ev.Extensions()[migrate.ExtReplyTo].(string)
		if replyTo == "" {
			return cloudevents.NewHTTPResult(http.StatusBadRequest, "no %s to answer at", migrate.ExtReplyTo)
		}
		mu.Lock()
		if !seen[ev.ID()] {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				_, err = f.WriteString(ev.ID() + "\n")
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				mu.Unlock()
				return err
			}
			seen[ev.ID()] = true
		}
		mu.Unlock()
		ans := cloudevents.NewEvent()
		ans.SetID(ev.ID() + "-answer")
		ans.SetSource("functions-framework/upper")
		ans.SetType(migrate.EventResult)
		ans.SetTime(time.Now())
		ans.SetExtension(migrate.ExtRequest, ev.ID())
		if err := ans.SetData("application/octet-stream", bytes.ToUpper(ev.Data())); err != nil {
			return err
		}
		if err := cesdk.Sign(key, &ans); err != nil {
			return err
		}
		c, err := cloudevents.NewClientHTTP()
		if err != nil {
			return err
		}
		if res := c.Send(cloudevents.ContextWithTarget(ctx, replyTo), ans); !cloudevents.IsACK(res) {
			return fmt.Errorf("answer to %s: %w", replyTo, res)
		}
		return nil
	}
}

// serveFunctionsFramework is the child process: the counting function
// registered with the framework and served by it on addr. It exits when
// stdin closes (the parent is done or died) or when killed.
func serveFunctionsFramework(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		var fn func(context.Context, cloudevents.Event) error
		if fn, err = ffCounter(os.Getenv(envFFEffects), []byte(os.Getenv(envRegionKey))); err == nil {
			err = funcframework.RegisterCloudEventFunctionContext(context.Background(), "/", fn)
		}
		if err == nil {
			err = funcframework.RegisterCloudEventFunctionContext(context.Background(), "/upper",
				ffUpper(os.Getenv(envFFEffects)+".upper", []byte(os.Getenv(envRegionKey))))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "functions framework child:", err)
		return 1
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	err = funcframework.StartHostPort(host, port)
	fmt.Fprintln(os.Stderr, "functions framework child:", err)
	return 1
}

// ffInstance is one Functions Framework process serving the counting
// function on addr.
type ffInstance struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed once the process has exited
}

// freeAddr returns a port on ip that nothing listens on now (the
// framework opens its own listener and reports neither it nor its port).
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := listenLoopback(ip)
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startFF starts an instance serving on addr with its effects in
// effectsPath, and returns once the framework accepts connections. t's
// cleanup stops it.
func startFF(t *testing.T, addr, effectsPath string) (*ffInstance, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envFFAddr+"="+addr, envFFEffects+"="+effectsPath, envRegionKey+"="+string(testKey))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	inst := &ffInstance{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(inst.done)
	}()
	t.Cleanup(inst.stop)
	if err := waitListening(addr, inst.done, time.Minute); err != nil {
		return nil, fmt.Errorf("functions framework instance: %w", err)
	}
	return inst, nil
}

// waitListening returns once something accepts connections on addr. The
// framework binds inside StartHostPort and signals nothing, so this dials
// until a connection is accepted (a refused dial returns at once; the
// pause between dials only spares the CPU); it fails at once when the
// process exits (exited closes: its bind failed, say), or after limit.
func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, limit, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("the instance for %s exited before it listened (see its stderr)", addr)
		case <-time.After(pause):
		}
	}
}

// kill ends the instance abruptly (SIGKILL) and waits for it to be gone.
func (f *ffInstance) kill() error {
	if err := f.cmd.Process.Kill(); err != nil {
		return err
	}
	<-f.done
	return nil
}

func (f *ffInstance) stop() {
	_ = f.stdin.Close()
	_ = f.cmd.Process.Kill()
	<-f.done
}

// readEffects returns how many times each id took effect, from the
// counting function's effects file.
func readEffects(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	byID := map[string]int{}
	for _, id := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if id != "" {
			byID[id]++
		}
	}
	return byID
}

// loseResponse answers nothing: it closes the client's connection, as a
// network failure after the request arrived would.
func loseResponse(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// A Functions Framework CloudEvent function, served by the framework
// itself (funcframework.StartHostPort on 127.0.0.x, in a process of its
// own), as the target of a counting function whose callers need no
// answer. A proxy between the lease and the framework loses the answer to
// the first attempt of every seventh invocation after the function ran
// (the lease retries), and at the thirtieth invocation SIGKILLs the
// instance after the function ran and before it answered, then starts a
// new instance on the same address (the lease retries there). N
// invocations from four goroutines → N effects, none twice, none at home.
//
// The lease delivers one invocation at a time to it (the target's
// CloudEventsOptions.MaxInFlight 1, the Mover's default 16): the
// framework's CloudEvent handler is the cloudevents SDK's
// NewHTTPReceiveHandler, which pairs each request with a goroutine of
// another and, with requests in flight at once, can end up answering each
// request only when the next arrives (cloudevents/sdk-go issue 1224,
// open). With MaxInFlight 4 this test hung in two of three runs in one
// process: the lease's serial replay after a lost answer waited forever.
// A function that needs an answer is refused at Migrate (the target is
// declared AcknowledgeOnly: the framework's CloudEvent function returns
// only an error); undeclared, such a function's invocations fail with
// ErrNoAnswer and never run at home.
func TestFunctionsFrameworkTarget(t *testing.T) {
	dir := t.TempDir()
	effectsPath := filepath.Join(dir, "effects")
	ffAddr := freeAddr(t, "127.0.0.41")
	inst, err := startFF(t, ffAddr, effectsPath)
	require.NoError(t, err)

	ffURL, err := url.Parse("http://" + ffAddr + "/")
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(ffURL)
	tr := &http.Transport{} // not http.DefaultTransport: nothing outlives the test
	t.Cleanup(tr.CloseIdleConnections)
	rp.Transport = tr
	const n, killAt = 60, 30
	var mu sync.Mutex
	order := map[string]int{} // invocation id → its arrival rank
	var lost, killed int
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		if r.Header.Get("Ce-Type") != migrate.EventInvoke {
			rp.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		rank, again := order[id]
		if !again {
			rank = len(order) + 1
			order[id] = rank
		}
		mu.Unlock()
		switch {
		case again || (rank%7 != 0 && rank != killAt):
			rp.ServeHTTP(w, r)
		case rank%7 == 0:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the function runs; its answer is lost
			mu.Lock()
			lost++
			mu.Unlock()
			loseResponse(w)
		default: // rank == killAt
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the function runs, then its instance dies
			if err := inst.kill(); err != nil {
				t.Errorf("kill the instance: %v", err)
			}
			var err error
			if inst, err = startFF(t, ffAddr, effectsPath); err != nil { // the platform's next instance
				t.Errorf("start the next instance: %v", err)
			}
			mu.Lock()
			killed++
			mu.Unlock()
			loseResponse(w)
		}
	})
	front := startRegion(t, "127.0.0.42", proxy)

	ct := newTarget(t, "gcf", front.url, migrate.CloudEventsOptions{AcknowledgeOnly: true, MaxInFlight: 1, Provider: "gcp-functions-framework"})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{RetryInitial: time.Millisecond, FailoverAfter: 2 * time.Minute})
	ctx := ctxT(t)
	var home int
	var homeMu sync.Mutex

	_, err = m.Migrate(ctx, "ff-needs-answer", []migrate.Spec{{Function: "count", Local: homeCounter(&home, &homeMu)}})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, `gcf is declared AcknowledgeOnly without a ReplyTo, and function "count" needs an answer`)

	lease, err := m.Migrate(ctx, "ff-lease", []migrate.Spec{{Function: "count", Local: homeCounter(&home, &homeMu), NoAnswer: true}})
	require.NoError(t, err)
	require.Equal(t, "gcf", lease.Placements()[0].Target)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if _, err := lease.Invoke(ctx, "count", fmt.Appendf(nil, "%d", i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, "gcf", lease.Placements()[0].Target, "the function stayed on the framework")
	require.NoError(t, lease.Return(ctx))

	byID := readEffects(t, effectsPath)
	for id, c := range byID {
		require.Equal(t, 1, c, "invocation %s took effect %d times", id, c)
	}
	require.Len(t, byID, n, "effects at the framework")
	mu.Lock()
	require.Equal(t, n/7, lost, "answers lost")
	require.Equal(t, 1, killed, "instances killed")
	mu.Unlock()
	require.Positive(t, lease.Stats().Retries)
	require.Zero(t, home, "runs at home")

	// Undeclared, the target is placed for a function that needs an
	// answer; the framework accepts and runs each invocation but cannot
	// answer: ErrNoAnswer, and never a run at home.
	ct2 := newTarget(t, "gcf-undeclared", "http://"+ffAddr+"/", migrate.CloudEventsOptions{MaxInFlight: 1})
	m2 := newMover(t, []migrate.Target{ct2}, migrate.Options{})
	lease2, err := m2.Migrate(ctx, "ff-undeclared", []migrate.Spec{{Function: "count", Local: homeCounter(&home, &homeMu)}})
	require.NoError(t, err)
	const n2 = 5
	for i := range n2 {
		_, err := lease2.Invoke(ctx, "count", fmt.Appendf(nil, "%d", i))
		require.ErrorIs(t, err, migrate.ErrNoAnswer)
	}
	require.NoError(t, lease2.Return(ctx))
	require.Len(t, readEffects(t, effectsPath), n+n2)
	require.Zero(t, home, "runs at home")
}

// A Functions Framework CloudEvent function whose callers need an answer
// (ffUpper, at /upper of an instance the framework serves) hosts such a
// function through the target's ReplyTo: it acknowledges with HTTP 200
// and posts the signed answer to the address the lease's host serves
// (the target's ReplyHandler on 127.0.0.44). Each invocation gets its own
// answer, takes effect once, never at home.
func TestFunctionsFrameworkRepliesLater(t *testing.T) {
	dir := t.TempDir()
	effectsPath := filepath.Join(dir, "effects")
	ffAddr := freeAddr(t, "127.0.0.43")
	_, err := startFF(t, ffAddr, effectsPath)
	require.NoError(t, err)

	ln, err := listenLoopback("127.0.0.44")
	require.NoError(t, err)
	ct := newTarget(t, "gcf-upper", "http://"+ffAddr+"/upper", migrate.CloudEventsOptions{
		AcknowledgeOnly: true, ReplyTo: "http://" + ln.Addr().String() + "/replies", MaxInFlight: 1})
	srv := &http.Server{Handler: ct.ReplyHandler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	ctx := ctxT(t)
	var home int
	var homeMu sync.Mutex
	lease, err := m.Migrate(ctx, "ff-upper", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &homeMu)}})
	require.NoError(t, err)
	require.Equal(t, "gcf-upper", lease.Placements()[0].Target)
	const n = 20
	for i := range n {
		out, err := lease.Invoke(ctx, "upper", fmt.Appendf(nil, "word %d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("WORD %d", i), string(out))
	}
	require.NoError(t, lease.Return(ctx))
	byID := readEffects(t, effectsPath+".upper")
	for id, c := range byID {
		require.Equal(t, 1, c, "invocation %s took effect %d times", id, c)
	}
	require.Len(t, byID, n)
	require.Zero(t, home, "runs at home")
}
