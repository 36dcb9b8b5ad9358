package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/migrate/cesdk"
)

// sdkRequest sends ev with the cloudevents SDK's own client and returns
// the answer event (if any) and the HTTP status.
func sdkRequest(t *testing.T, url string, ev event.Event) (*event.Event, int) {
	t.Helper()
	c, err := cloudevents.NewClientHTTP()
	require.NoError(t, err)
	ans, res := c.Request(cloudevents.ContextWithTarget(ctxT(t), url), ev)
	var hr *cehttp.Result
	if errors.As(res, &hr) {
		return ans, hr.StatusCode
	}
	require.True(t, cloudevents.IsACK(res), "SDK result %v", res)
	return ans, http.StatusOK
}

func invokeEvent(t *testing.T, id, function string, data []byte, at time.Time) event.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("test/sdk-client")
	ev.SetType(migrate.EventInvoke)
	ev.SetSubject(function)
	ev.SetTime(at)
	require.NoError(t, ev.SetData("application/octet-stream", data))
	return ev
}

func handlerRegion(t *testing.T, opts migrate.HandlerOptions) (*region, *migrate.MapState) {
	t.Helper()
	if opts.Key == nil {
		opts.Key = testKey
	}
	h := migrate.NewHandler(opts)
	st := &migrate.MapState{}
	h.Register("count", count(st), st)
	h.Register("fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("boom") }, nil)
	return startRegion(t, "127.0.0.2", h), st
}

// The cloudevents SDK's own client invokes a function served by Handler;
// the answer is signed and names the request; the same id twice runs once.
func TestHandlerServesSDKClient(t *testing.T) {
	reg, st := handlerRegion(t, migrate.HandlerOptions{})
	ev := invokeEvent(t, "req-1", "count", []byte("apples"), time.Now())
	require.NoError(t, cesdk.Sign(testKey, &ev))

	ans, status := sdkRequest(t, reg.url, ev)
	require.Equal(t, http.StatusOK, status)
	require.NotNil(t, ans)
	require.Equal(t, migrate.EventResult, ans.Type())
	require.Equal(t, "1", string(ans.Data()))
	require.Equal(t, "req-1", ans.ID(), "the answer carries the request id")
	require.NoError(t, cesdk.Verify(testKey, ans, time.Now(), time.Minute), "answers are signed")

	ans, status = sdkRequest(t, reg.url, ev) // a retry of the same event
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "1", string(ans.Data()), "a retried id gets the first answer")
	require.Equal(t, int64(1), st.Get("apples"), "and runs once")

	ev2 := invokeEvent(t, "req-2", "count", []byte("apples"), time.Now())
	require.NoError(t, cesdk.Sign(testKey, &ev2))
	ans, _ = sdkRequest(t, reg.url, ev2)
	require.Equal(t, "2", string(ans.Data()))
}

// A Handler's answers carry their time in the signature ("t=...,v1=..."),
// not in ce-time; Verify checks that form as well as Sign's "v1=" one, and
// refuses a ce-time that contradicts the signed time, a signed time
// tampered with or outside the window, and signatures of no known form.
func TestSignatureForms(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	ev := invokeEvent(t, "sig-1", "count", []byte("plums"), time.Now())
	require.NoError(t, cesdk.Sign(testKey, &ev))
	require.True(t, strings.HasPrefix(ev.Extensions()[migrate.ExtSignature].(string), "v1="), "Sign leaves the time to ce-time")
	require.NoError(t, cesdk.Verify(testKey, &ev, time.Now(), time.Minute))

	ans, status := sdkRequest(t, reg.url, ev)
	require.Equal(t, http.StatusOK, status)
	require.True(t, ans.Time().IsZero(), "the answer sends no ce-time")
	sig := ans.Extensions()[migrate.ExtSignature].(string)
	ts, mac, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	require.True(t, ok && strings.HasPrefix(sig, "t="), "signature %q", sig)
	nanos, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	signedAt := time.Unix(0, nanos)
	require.NoError(t, cesdk.Verify(testKey, ans, time.Now(), time.Minute))

	withSig := func(sig string, at time.Time) *event.Event {
		c := ans.Clone()
		c.SetExtension(migrate.ExtSignature, sig)
		c.SetTime(at)
		return &c
	}
	require.NoError(t, cesdk.Verify(testKey, withSig(sig, signedAt), time.Now(), time.Minute), "a ce-time equal to the signed time")
	for _, tc := range []struct {
		name string
		ev   *event.Event
		now  time.Time
		want string
	}{
		{"ce-time differs", withSig(sig, signedAt.Add(time.Second)), time.Now(), "differs from the signed time"},
		{"signed time changed", withSig("t="+strconv.FormatInt(nanos+1, 10)+",v1="+mac, time.Time{}), time.Now(), "signature does not match"},
		{"outside the window", withSig(sig, time.Time{}), signedAt.Add(2 * time.Minute), "window"},
		{"time not a number", withSig("t=soon,v1="+mac, time.Time{}), time.Now(), "malformed"},
		{"no mac", withSig("t="+ts, time.Time{}), time.Now(), "malformed"},
		{"unknown form", withSig("v2="+mac, time.Time{}), time.Now(), "no known form"},
		{"v1 form without a time", withSig("v1="+mac, time.Time{}), time.Now(), "has no time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cesdk.Verify(testKey, tc.ev, tc.now, time.Minute)
			require.ErrorIs(t, err, migrate.ErrUnauthorized)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	reg, st := handlerRegion(t, migrate.HandlerOptions{MaxPayloadBytes: 16, Window: time.Minute})
	now := time.Now()
	signed := func(ev event.Event) event.Event {
		require.NoError(t, cesdk.Sign(testKey, &ev))
		return ev
	}
	tampered := signed(invokeEvent(t, "t-1", "count", []byte("pears"), now))
	require.NoError(t, tampered.SetData("application/octet-stream", []byte("plums")))
	otherKey := invokeEvent(t, "k-1", "count", []byte("pears"), now)
	require.NoError(t, cesdk.Sign([]byte("some-other-key-0123"), &otherKey))
	wrongType := invokeEvent(t, "w-1", "count", []byte("pears"), now)
	wrongType.SetType("com.example.other")

	for _, tc := range []struct {
		name   string
		ev     event.Event
		status int
		want   string
	}{
		{"unsigned", invokeEvent(t, "u-1", "count", []byte("pears"), now), 401, "unsigned"},
		{"tampered", tampered, 401, "signature does not match"},
		{"other key", otherKey, 401, "signature does not match"},
		{"replayed outside the window", signed(invokeEvent(t, "o-1", "count", []byte("pears"), now.Add(-10*time.Minute))), 401, "window"},
		{"from a clock ahead", signed(invokeEvent(t, "o-2", "count", []byte("pears"), now.Add(10*time.Minute))), 401, "clocks skewed"},
		{"unknown function", signed(invokeEvent(t, "f-1", "nope", []byte("pears"), now)), 404, `"nope" is not registered`},
		{"wrong event type", signed(wrongType), 400, `type "com.example.other"`},
		{"oversized payload", signed(invokeEvent(t, "b-1", "count", bytes.Repeat([]byte("x"), 17), now)), 413, "17 bytes, limit 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, status := sdkRequest(t, reg.url, tc.ev)
			require.Equal(t, tc.status, status)
			require.NotNil(t, ans, "refusals carry an error event")
			require.Equal(t, migrate.EventError, ans.Type())
			require.Contains(t, string(ans.Data()), tc.want)
		})
	}
	require.Empty(t, st.Snapshot(), "nothing refused ran")

	resp, err := http.Get(reg.url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, err = http.Post(reg.url, "text/plain", strings.NewReader("hello"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "not a CloudEvent")
}

// A handler whose clock is skewed beyond the window refuses even fresh
// requests, and says so.
func TestHandlerClockSkew(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{Window: time.Minute, Clock: func() time.Time { return time.Now().Add(time.Hour) }})
	ev := invokeEvent(t, "s-1", "count", []byte("pears"), time.Now())
	require.NoError(t, cesdk.Sign(testKey, &ev))
	ans, status := sdkRequest(t, reg.url, ev)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, string(ans.Data()), "clocks skewed")
}

func TestHandlerFunctionError(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{})
	ev := invokeEvent(t, "e-1", "fail", []byte("x"), time.Now())
	require.NoError(t, cesdk.Sign(testKey, &ev))
	ans, status := sdkRequest(t, reg.url, ev)
	require.Equal(t, http.StatusOK, status, "the function's own error is an answer, not a refusal")
	require.Equal(t, migrate.EventError, ans.Type())
	require.Equal(t, "true", ans.Extensions()[migrate.ExtFunctionError])
	require.Equal(t, "boom", string(ans.Data()))
}

func TestHandlerRegisterPanics(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	f := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	h.Register("a", f, nil)
	require.PanicsWithValue(t, `migrate: Handler.Register("a"): registered twice`, func() { h.Register("a", f, nil) })
	require.Panics(t, func() { h.Register("", f, nil) })
	require.Panics(t, func() { h.Register("b", nil, nil) })
	require.Panics(t, func() { migrate.NewHandler(migrate.HandlerOptions{}) }, "no key and not Insecure")
	require.Panics(t, func() { migrate.NewHandler(migrate.HandlerOptions{Key: []byte("short")}) }, "guessable key")
}

// State transfers are checked like invocations: a request for another
// generation of the state is refused (409), and a put replayed inside the
// window does not roll the state back.
func TestHandlerStateGenerationsAndReplayedPut(t *testing.T) {
	reg, st := handlerRegion(t, migrate.HandlerOptions{})
	send := func(typ, id, gen string, data []byte) (*event.Event, int) {
		ev := invokeEvent(t, id, "count", data, time.Now())
		ev.SetType(typ)
		if gen != "" {
			ev.SetExtension(migrate.ExtGeneration, gen)
		}
		require.NoError(t, cesdk.Sign(testKey, &ev))
		return sdkRequest(t, reg.url, ev)
	}
	_, status := send(migrate.EventPutState, "put-1", "g1", []byte(`{"a":1}`))
	require.Equal(t, http.StatusOK, status)
	ans, status := send(migrate.EventInvoke, "inv-1", "g1", []byte("a"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "2", string(ans.Data()))

	ans, status = send(migrate.EventInvoke, "inv-2", "g0", []byte("a"))
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, string(ans.Data()), `state generation "g0"`)

	_, status = send(migrate.EventPutState, "put-1", "g1", []byte(`{"a":1}`)) // replayed
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int64(2), st.Get("a"), "the replayed put did not roll the state back")

	ans, status = send(migrate.EventGetState, "get-1", "g1", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"a":2}`, string(ans.Data()))
}

// An invocation's body is bounded by MaxPayloadBytes before anything else
// is read or checked; only state transfers may be larger.
func TestHandlerBoundsBodiesByType(t *testing.T) {
	reg, _ := handlerRegion(t, migrate.HandlerOptions{MaxPayloadBytes: 16, MaxStateBytes: 1024})
	post := func(typ string, n int) int {
		req, err := http.NewRequest(http.MethodPost, reg.url, bytes.NewReader(bytes.Repeat([]byte("x"), n)))
		require.NoError(t, err)
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", "i")
		req.Header.Set("Ce-Source", "s")
		req.Header.Set("Ce-Type", typ)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusRequestEntityTooLarge, post(migrate.EventInvoke, 17))
	require.Equal(t, http.StatusUnauthorized, post(migrate.EventPutState, 17), "a state may be larger (and is then refused unsigned)")
	require.Equal(t, http.StatusRequestEntityTooLarge, post(migrate.EventPutState, 1025))
}
