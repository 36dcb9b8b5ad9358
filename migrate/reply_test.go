package migrate_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// asyncReceiver acknowledges every event with 202 at once and, for an
// invocation, posts the answer later to the event's updraftreplyto
// address: a signed CloudEvent of type typ whose updraftreq is the
// invocation's id, its data the payload in upper case. It records each
// invocation's effect.
func asyncReceiver(t *testing.T, eff *effects, typ string) http.Handler {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Type") != migrate.EventInvoke {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		id, to := r.Header.Get("Ce-Id"), r.Header.Get("Ce-Updraftreplyto")
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		eff.add(id)
		w.WriteHeader(http.StatusAccepted)
		wg.Go(func() {
			ans := migrate.Event{ID: id + "-reply", Source: "async-receiver", Type: typ, Req: id, Time: time.Now(),
				Data: bytes.ToUpper(body.Bytes())}
			if err := migrate.SignEvent(testKey, &ans); err != nil {
				t.Error(err)
				return
			}
			req, _ := http.NewRequest(http.MethodPost, to, bytes.NewReader(ans.Data))
			for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": ans.ID, "Ce-Source": ans.Source, "Ce-Type": ans.Type,
				"Ce-Updraftreq": ans.Req, "Ce-Time": ans.Time.UTC().Format(time.RFC3339Nano), "Ce-Updraftsig": ans.Sig,
				"Content-Type": "application/octet-stream"} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("reply to %s: HTTP %d", to, resp.StatusCode)
			}
		})
	})
}

// A receiver that acknowledges with 202 and answers later, at the
// address the lease's host serves (CloudEventsOptions.ReplyTo and the
// target's ReplyHandler), hosts a function that needs an answer: each
// invocation gets its own answer, matched by id, and takes effect once,
// none at home. A reply nobody waits for is refused with 404, an
// unsigned one with 401.
func TestAsynchronousReplies(t *testing.T) {
	eff := newEffects()
	remote := startRegion(t, "127.0.0.31", asyncReceiver(t, eff, "com.example.upper.done"))
	ln, err := listenLoopback("127.0.0.32")
	require.NoError(t, err)
	replyTo := "http://" + ln.Addr().String() + "/replies"
	ct := newTarget(t, "async", remote.url, migrate.CloudEventsOptions{AcknowledgeOnly: true, ReplyTo: replyTo})
	srv := &http.Server{Handler: ct.ReplyHandler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	ctx := ctxT(t)
	var home int
	var mu sync.Mutex
	lease, err := m.Migrate(ctx, "async-lease", []migrate.Spec{{Function: "upper", Local: homeCounter(&home, &mu),
		AnswerTypes: []string{"com.example.upper.done"}}})
	require.NoError(t, err)
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := lease.Invoke(ctx, "upper", fmt.Appendf(nil, "word %d", i))
			if err != nil {
				t.Error(err)
				return
			}
			if want := fmt.Sprintf("WORD %d", i); string(out) != want {
				t.Errorf("invocation %d got %q, want %q", i, out, want)
			}
		})
	}
	wg.Wait()
	require.NoError(t, lease.Return(ctx))
	eff.check(t, n)
	require.Zero(t, home)

	stray := migrate.Event{ID: "nobody", Source: "s", Type: migrate.EventResult, Req: "nobody", Time: time.Now()}
	require.NoError(t, migrate.SignEvent(testKey, &stray))
	for _, tc := range []struct {
		sig  string
		want int
	}{{stray.Sig, http.StatusNotFound}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodPost, replyTo, strings.NewReader(""))
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": stray.ID, "Ce-Source": stray.Source, "Ce-Type": stray.Type,
			"Ce-Updraftreq": stray.Req, "Ce-Time": stray.Time.UTC().Format(time.RFC3339Nano), "Ce-Updraftsig": tc.sig} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode)
	}
}
