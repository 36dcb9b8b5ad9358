package migrate_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// effects counts the effects of a function by idempotency key, wherever
// it ran: a receiver that does NOT deduplicate records every delivery, so
// a delivery made twice shows as a duplicate.
type effects struct {
	mu    sync.Mutex
	byID  map[string]int
	total int
}

func newEffects() *effects { return &effects{byID: map[string]int{}} }

func (e *effects) add(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byID[id]++
	e.total++
}

// check fails unless exactly n effects happened, none twice for one id.
func (e *effects) check(t *testing.T, n int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, c := range e.byID {
		require.Equal(t, 1, c, "invocation %s took effect %d times", id, c)
	}
	require.Equal(t, n, e.total, "effects")
}

// homeCounter is a Spec.Local that counts its runs: a function accepted
// by a target must never run at home as well.
func homeCounter(n *int, mu *sync.Mutex) migrate.Func {
	return func(context.Context, []byte) ([]byte, error) {
		mu.Lock()
		*n++
		mu.Unlock()
		return []byte("home"), nil
	}
}

// ackReceiver answers every event with 202 Accepted and no body, as a
// Knative-style sink does; it records each invocation's effect.
func ackReceiver(eff *effects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Type") == migrate.EventInvoke {
			eff.add(r.Header.Get("Ce-Id"))
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// A receiver declared to acknowledge only hosts functions whose callers
// need no answer; each invocation takes effect once, none at home. A
// function that needs an answer is refused at Migrate, naming the reason.
func TestAcknowledgeOnlyReceiver(t *testing.T) {
	eff := newEffects()
	reg := startRegion(t, "127.0.0.21", ackReceiver(eff))
	ct := newTarget(t, "sink", reg.url, migrate.CloudEventsOptions{AcknowledgeOnly: true})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	ctx := ctxT(t)
	var home int
	var mu sync.Mutex

	_, err := m.Migrate(ctx, "needs-answer", []migrate.Spec{{Function: "notify", Local: homeCounter(&home, &mu)}})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, "sink is declared AcknowledgeOnly without a ReplyTo, and function \"notify\" needs an answer")

	lease, err := m.Migrate(ctx, "fire-and-forget", []migrate.Spec{{Function: "notify", Local: homeCounter(&home, &mu), NoAnswer: true}})
	require.NoError(t, err)
	const n = 50
	for i := range n {
		out, err := lease.Invoke(ctx, "notify", fmt.Appendf(nil, "event %d", i))
		require.NoError(t, err)
		require.Nil(t, out)
	}
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
	require.Zero(t, home, "runs at home after the target accepted")
}

// A plain SDK receiver that answers nothing (HTTP 200 without an event)
// to a function that needs an answer: each invocation fails with
// ErrNoAnswer, takes effect once at the receiver, and never runs at home.
func TestAcceptedWithoutAnswerNeverRunsAtHome(t *testing.T) {
	eff := newEffects()
	reg := sdkReceiver(t, "127.0.0.22", func(ev event.Event) (*event.Event, protocol.Result) {
		if ev.Type() == migrate.EventInvoke {
			eff.add(ev.ID())
		}
		return nil, nil
	})
	ct := newTarget(t, "silent", reg.url, migrate.CloudEventsOptions{})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	ctx := ctxT(t)
	var home int
	var mu sync.Mutex
	lease, err := m.Migrate(ctx, "silent-lease", []migrate.Spec{{Function: "resize", Local: homeCounter(&home, &mu)}})
	require.NoError(t, err)
	const n = 20
	for i := range n {
		_, err := lease.Invoke(ctx, "resize", fmt.Appendf(nil, "img %d", i))
		require.ErrorIs(t, err, migrate.ErrNoAnswer)
		require.NotErrorIs(t, err, migrate.ErrRejected)
	}
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
	require.Zero(t, home, "runs at home after the target accepted")
	require.Zero(t, lease.Stats().Failovers, "an accepted invocation is no target failure")
}

// ownTypeReceiver replies to every event, the probe included, with an
// event of its own type carrying the data in upper case.
func ownTypeReceiver(eff *effects) func(event.Event) (*event.Event, protocol.Result) {
	return func(ev event.Event) (*event.Event, protocol.Result) {
		if ev.Type() == migrate.EventInvoke {
			eff.add(ev.ID())
		}
		ans := cloudevents.NewEvent()
		ans.SetID(ev.ID() + "-done")
		ans.SetSource("own-type-receiver")
		ans.SetType("com.example.upper.done")
		_ = ans.SetData("application/octet-stream", []byte(strings.ToUpper(string(ev.Data()))))
		return &ans, nil
	}
}

// A receiver replying with events of its own type serves a function that
// declares that type (exactly once, answers delivered), and is refused at
// Migrate for one that does not, and for a stateful one.
func TestReceiverReplyingWithItsOwnType(t *testing.T) {
	eff := newEffects()
	reg := sdkReceiver(t, "127.0.0.23", ownTypeReceiver(eff))
	ct := newTarget(t, "own", reg.url, migrate.CloudEventsOptions{})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	ctx := ctxT(t)
	var home int
	var mu sync.Mutex

	_, err := m.Migrate(ctx, "undeclared", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &mu)}})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, `own answers with events of type "com.example.upper.done", which function "upper" does not accept`)

	_, err = m.Migrate(ctx, "stateful", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &mu),
		AnswerTypes: []string{"com.example.upper.done"}, State: &migrate.MapState{}}})
	require.ErrorIs(t, err, migrate.ErrNoTarget)
	require.ErrorContains(t, err, "does not speak the updraft state protocol")

	lease, err := m.Migrate(ctx, "declared", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &mu),
		AnswerTypes: []string{"com.example.upper.done"}}})
	require.NoError(t, err)
	const n = 30
	for i := range n {
		out, err := lease.Invoke(ctx, "upper", fmt.Appendf(nil, "word %d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("WORD %d", i), string(out))
	}
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
	require.Zero(t, home)
}

// Spec.Validate refuses AnswerTypes that cannot be answers.
func TestSpecAnswerTypesValidated(t *testing.T) {
	f := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	for _, typ := range []string{"", migrate.EventError} {
		err := migrate.Spec{Function: "f", Local: f, AnswerTypes: []string{"ok.type", typ}}.Validate()
		require.Error(t, err)
		require.ErrorContains(t, err, "AnswerTypes[1]")
	}
	require.NoError(t, migrate.Spec{Function: "f", Local: f, AnswerTypes: []string{"ok.type"}}.Validate())
}

// A 202 sink hosting a NoAnswer function, across retries (every fifth
// invocation is first answered 503 without running) and the sink's death
// mid-stream (the function fails over home): N invocations, N effects in
// all, none twice.
func TestAcknowledgeOnlyAcrossRetryAndDeath(t *testing.T) {
	eff := newEffects()
	var mu sync.Mutex
	busyOnce := map[string]bool{}
	sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		if r.Header.Get("Ce-Type") == migrate.EventInvoke {
			mu.Lock()
			refuse := strings.HasSuffix(id, "5") && !busyOnce[id]
			busyOnce[id] = true
			mu.Unlock()
			if refuse {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			eff.add(id)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	reg := startRegion(t, "127.0.0.30", sink)
	ct := newTarget(t, "sink", reg.url, migrate.CloudEventsOptions{AcknowledgeOnly: true})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{RetryInitial: time.Millisecond})
	ctx := ctxT(t)
	home := func(_ context.Context, p []byte) ([]byte, error) {
		eff.add("home:" + string(p))
		return nil, nil
	}
	lease, err := m.Migrate(ctx, "sink-dies", []migrate.Spec{{Function: "notify", Local: home, NoAnswer: true}})
	require.NoError(t, err)
	const n = 60
	for i := range n {
		if i == n/2 {
			require.NoError(t, reg.srv.Close()) // the sink dies mid-stream
		}
		_, err := lease.Invoke(ctx, "notify", fmt.Appendf(nil, "%d", i))
		require.NoError(t, err)
	}
	require.Equal(t, "home", lease.Placements()[0].Target)
	require.Positive(t, lease.Stats().Retries)
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
}

// The limit of exactly-once for effects outside a function's State: an
// invocation whose answer was lost when its target died for good has an
// unknown outcome there, and the failover replays it at home. Here the
// 202 sink takes the effect of invocation killAt, then dies before
// answering and never comes back: that one invocation takes effect at
// least twice (at the sink, where a retry may also have reached it before
// it closed, and at home), every other once. (A stateful function's
// state is rebuilt from its checkpoint and the replay, so it stays right;
// see failover_test.go.)
func TestInDoubtInvocationAfterTargetDiesForGood(t *testing.T) {
	eff := newEffects()
	const n, killAt = 20, 10
	var reg *region
	sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Type") == migrate.EventInvoke {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			eff.add(string(body))
			if string(body) == strconv.Itoa(killAt) {
				loseResponse(w)     // the effect happened; the answer is lost
				_ = reg.srv.Close() // and the sink is gone for good
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
	reg = startRegion(t, "127.0.0.31", sink)
	ct := newTarget(t, "sink", reg.url, migrate.CloudEventsOptions{AcknowledgeOnly: true})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{RetryInitial: time.Millisecond, FailoverAfter: 50 * time.Millisecond, MaxInFlight: 1})
	ctx := ctxT(t)
	home := func(_ context.Context, p []byte) ([]byte, error) {
		eff.add(string(p))
		return nil, nil
	}
	lease, err := m.Migrate(ctx, "in-doubt", []migrate.Spec{{Function: "notify", Local: home, NoAnswer: true}})
	require.NoError(t, err)
	for i := range n {
		_, err := lease.Invoke(ctx, "notify", []byte(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.Equal(t, "home", lease.Placements()[0].Target)
	require.NoError(t, lease.Return(ctx))
	eff.mu.Lock()
	defer eff.mu.Unlock()
	for i := range n {
		if i == killAt {
			// In doubt: it ran at the sink (once, or twice when a retry
			// reached the sink before it closed) and again at home.
			require.GreaterOrEqual(t, eff.byID[strconv.Itoa(i)], 2, "effects of the in-doubt invocation %d", i)
			continue
		}
		require.Equal(t, 1, eff.byID[strconv.Itoa(i)], "effects of invocation %d", i)
	}
	require.Equal(t, n-1+eff.byID[strconv.Itoa(killAt)], eff.total)
}

// A receiver replying with its own event type, across lost answers and a
// restart: it deduplicates by id and answers a repeat with the answer it
// gave (its records outlive an instance, as a durable store's would). A
// proxy loses the answer to the first attempt of every fifth invocation
// after the receiver ran it, and at the twelfth closes the receiver's
// server after it ran the invocation and starts a new one on the same
// address. N invocations → N answers, each its own, N effects, none at
// home. Delivered one at a time (CloudEventsOptions.MaxInFlight 1): the
// SDK's receive handler can stall with requests in flight at once (see
// functionsframework_test.go).
func TestOwnTypeReceiverAcrossRetryAndRestart(t *testing.T) {
	eff := newEffects()
	var mu sync.Mutex
	answered := map[string][]byte{} // id → the answer given
	receive := func(ev event.Event) (*event.Event, protocol.Result) {
		if ev.Type() != migrate.EventInvoke {
			return nil, nil
		}
		mu.Lock()
		out, again := answered[ev.ID()]
		if !again {
			out = []byte(strings.ToUpper(string(ev.Data())))
			answered[ev.ID()] = out
			eff.add(ev.ID())
		}
		mu.Unlock()
		ans := cloudevents.NewEvent()
		ans.SetID(ev.ID() + "-done")
		ans.SetSource("own-type-receiver")
		ans.SetType("com.example.upper.done")
		ans.SetExtension(migrate.ExtRequest, ev.ID())
		_ = ans.SetData("application/octet-stream", out)
		return &ans, nil
	}
	newReceiver := func() http.Handler {
		p, err := cloudevents.NewHTTP()
		require.NoError(t, err)
		h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, receive)
		require.NoError(t, err)
		return h
	}
	recv := startRegion(t, "127.0.0.33", newReceiver())
	addr := strings.TrimSuffix(strings.TrimPrefix(recv.url, "http://"), "/")
	var srvMu sync.Mutex
	srv := recv.srv
	restart := func() error {
		srvMu.Lock()
		defer srvMu.Unlock()
		if err := srv.Close(); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv = &http.Server{Handler: newReceiver()}
		go func() { _ = srv.Serve(ln) }()
		return nil
	}
	t.Cleanup(func() {
		srvMu.Lock()
		defer srvMu.Unlock()
		_ = srv.Close()
	})

	u, err := url.Parse(recv.url)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp.Transport = tr
	const n, restartAt = 30, 12
	order := map[string]int{}
	var lost, restarts int
	front := startRegion(t, "127.0.0.34", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if again || (rank%5 != 0 && rank != restartAt) {
			rp.ServeHTTP(w, r)
			return
		}
		rp.ServeHTTP(httptest.NewRecorder(), r) // it runs; its answer is lost
		if rank == restartAt {
			if err := restart(); err != nil {
				t.Errorf("restart the receiver: %v", err)
			}
		}
		mu.Lock()
		if rank == restartAt {
			restarts++
		} else {
			lost++
		}
		mu.Unlock()
		loseResponse(w)
	}))

	ct := newTarget(t, "own", front.url, migrate.CloudEventsOptions{MaxInFlight: 1})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{RetryInitial: time.Millisecond, FailoverAfter: time.Minute})
	ctx := ctxT(t)
	var home int
	var homeMu sync.Mutex
	lease, err := m.Migrate(ctx, "own-restart", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &homeMu),
		AnswerTypes: []string{"com.example.upper.done"}}})
	require.NoError(t, err)
	for i := range n {
		out, err := lease.Invoke(ctx, "upper", fmt.Appendf(nil, "word %d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("WORD %d", i), string(out))
	}
	require.Equal(t, "own", lease.Placements()[0].Target)
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
	require.Zero(t, home, "runs at home")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, n/5, lost, "answers lost")
	require.Equal(t, 1, restarts)
	require.Positive(t, lease.Stats().Retries)
}
