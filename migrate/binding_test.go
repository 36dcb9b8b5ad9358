package migrate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// signedRequest returns a binary-mode request for ev signed with
// testKey; rawID, when set, is sent as the ce-id header instead of ev.ID
// (a percent-encoded spelling of the same id).
func signedRequest(t *testing.T, ev migrate.Event, rawID string) *http.Request {
	t.Helper()
	ev.Time = time.Now()
	require.NoError(t, migrate.SignEvent(testKey, &ev))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(ev.Data)))
	if rawID == "" {
		rawID = ev.ID
	}
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": rawID, "Ce-Source": ev.Source,
		"Ce-Type": ev.Type, "Ce-Subject": ev.Subject, "Ce-Time": ev.Time.UTC().Format(time.RFC3339Nano),
		"Ce-Updraftsig": ev.Sig, "Content-Type": "application/octet-stream"} {
		req.Header.Set(k, v)
	}
	return req
}

// The Handler percent-decodes header values (HTTP binding 3.1.3.2): an
// id sent as "…A" and as "…%41" is one id and runs once; a function name
// with '%' and '"' travels both ways through a lease.
func TestPercentEncodingBothSides(t *testing.T) {
	var runs atomic.Int32
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("50%\"off", func(_ context.Context, p []byte) ([]byte, error) { runs.Add(1); return p, nil }, nil)
	ev := migrate.Event{ID: "order-A", Source: "test", Type: migrate.EventInvoke, Subject: "50%\"off", Data: []byte("x")}
	for _, raw := range []string{"order-A", "order-%41", "order-%41"} {
		rec := httptest.NewRecorder()
		req := signedRequest(t, ev, raw)
		req.Header.Set("Ce-Subject", "50%25%22off")
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	require.Equal(t, int32(1), runs.Load(), "one id, however it is spelled, runs once")

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, signedRequest(t, ev, "order-%4"))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "not a valid percent-encoding")

	reg := startRegion(t, "127.0.0.24", h)
	m := newMover(t, []migrate.Target{newTarget(t, "r", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{})
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "pct", []migrate.Spec{{Function: "50%\"off", Local: func(context.Context, []byte) ([]byte, error) { return nil, nil }}})
	require.NoError(t, err)
	out, err := lease.Invoke(ctx, "50%\"off", []byte("sale"))
	require.NoError(t, err)
	require.Equal(t, "sale", string(out))
	require.Equal(t, int32(2), runs.Load())
	require.NoError(t, lease.Return(ctx))
}

// Unsupported formats get 415; refusals of unreadable requests carry ids
// of their own, each unique; a 401 carries WWW-Authenticate.
func TestHandlerRefusals(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	for _, ct := range []string{"application/cloudevents+xml", "application/cloudevents-batch+json", "application/cloudevents+avro; charset=x"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("<event/>"))
		req.Header.Set("Content-Type", ct)
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnsupportedMediaType, rec.Code, ct)
		require.Contains(t, rec.Body.String(), "unsupported CloudEvents format")
	}
	ids := map[string]bool{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("garbage")))
		require.Equal(t, http.StatusBadRequest, rec.Code)
		id := rec.Header().Get("Ce-Id")
		require.True(t, strings.HasPrefix(id, "refusal-"), id)
		require.False(t, ids[id], "refusal id %s repeated", id)
		ids[id] = true
	}
	rec := httptest.NewRecorder()
	req := signedRequest(t, migrate.Event{ID: "u1", Source: "s", Type: migrate.EventInvoke, Subject: "f"}, "")
	req.Header.Del("Ce-Updraftsig")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, migrate.WWWAuthenticate, rec.Header().Get("WWW-Authenticate"))
}

// A 503 with Retry-After is retried no sooner than asked: the target
// reports the wait, and a lease whose FailoverAfter is shorter than it
// does not hammer the target (10 attempts in 850 ms before) but fails
// over home after at most two attempts.
func TestRetryAfterHonoured(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Type") == migrate.EventInvoke {
			mu.Lock()
			attempts++
			mu.Unlock()
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", r.Header.Get("Ce-Id"))
		w.Header().Set("Ce-Source", "busy")
		w.Header().Set("Ce-Type", migrate.EventResult)
		w.WriteHeader(http.StatusOK)
	})
	reg := startRegion(t, "127.0.0.25", busy)
	ct := newTarget(t, "busy", reg.url, migrate.CloudEventsOptions{Key: testKey})
	_, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "f", ID: "ra-1"})
	var ra *migrate.RetryAfterError
	require.True(t, errors.As(err, &ra), "%v", err)
	require.Equal(t, 5*time.Second, ra.After)
	require.ErrorIs(t, err, migrate.ErrUnreachable)

	m := newMover(t, []migrate.Target{ct}, migrate.Options{FailoverAfter: time.Second})
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "ra", []migrate.Spec{{Function: "f", Local: func(context.Context, []byte) ([]byte, error) { return []byte("home"), nil }}})
	require.NoError(t, err)
	out, err := lease.Invoke(ctx, "f", nil)
	require.NoError(t, err)
	require.Equal(t, "home", string(out))
	mu.Lock()
	n := attempts
	mu.Unlock()
	require.LessOrEqual(t, n, 1+2, "attempts against Retry-After: 5 (%s)", strconv.Itoa(n))
	require.NoError(t, lease.Return(ctx))
}
