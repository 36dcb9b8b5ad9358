package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// sdkReceiver is a plain CloudEvents receiver built only with the SDK, as
// Knative or Cloud Run would run it; answer decides how it responds.
func sdkReceiver(t *testing.T, ip string, answer func(event.Event) (*event.Event, protocol.Result)) *region {
	t.Helper()
	p, err := cloudevents.NewHTTP()
	require.NoError(t, err)
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, answer)
	require.NoError(t, err)
	return startRegion(t, ip, h)
}

// upperAnswer answers an invocation with its data in upper case, and a
// probe with nothing (an ACK).
func upperAnswer(ev event.Event) (*event.Event, protocol.Result) {
	if ev.Type() != migrate.EventInvoke {
		return nil, nil
	}
	ans := cloudevents.NewEvent()
	ans.SetID(ev.ID() + "-answer")
	ans.SetSource("plain-receiver")
	ans.SetType(migrate.EventResult)
	_ = ans.SetData("application/octet-stream", []byte(strings.ToUpper(string(ev.Data()))))
	return &ans, nil
}

// The target works against a plain CloudEvents receiver built only with
// the SDK, in a lease.
func TestTargetAgainstPlainSDKReceiver(t *testing.T) {
	reg := sdkReceiver(t, "127.0.0.3", upperAnswer)
	ct := newTarget(t, "plain", reg.url, migrate.CloudEventsOptions{})
	m := newMover(t, []migrate.Target{ct}, migrate.Options{})
	upper := func(_ context.Context, p []byte) ([]byte, error) { return []byte("local:" + string(p)), nil }
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "upper", Local: upper}})
	require.NoError(t, err)
	out, err := lease.Invoke(ctx, "upper", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "HELLO", string(out), "served by the plain receiver")
	require.NoError(t, lease.Return(ctx))
	out, err = lease.Invoke(ctx, "upper", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "local:hello", string(out))
}

// Bad answers from a target are clear errors of the documented kind.
func TestTargetBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(event.Event) (*event.Event, protocol.Result)
		want   error
		text   string
	}{
		{"ACK without an event", func(event.Event) (*event.Event, protocol.Result) { return nil, nil }, migrate.ErrNoAnswer, "without an answer event"},
		{"wrong event type", func(ev event.Event) (*event.Event, protocol.Result) {
			a := cloudevents.NewEvent()
			a.SetID("x")
			a.SetSource("s")
			a.SetType("com.example.surprise")
			return &a, nil
		}, migrate.ErrNoAnswer, `type "com.example.surprise"`},
		{"500 without an event", func(event.Event) (*event.Event, protocol.Result) {
			return nil, cehttp.NewResult(http.StatusInternalServerError, "down for maintenance")
		}, migrate.ErrUnreachable, "HTTP 500"},
		{"400 without an event", func(event.Event) (*event.Event, protocol.Result) {
			return nil, cehttp.NewResult(http.StatusBadRequest, "no")
		}, migrate.ErrRejected, "HTTP 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := sdkReceiver(t, "127.0.0.3", tc.answer)
			ct := newTarget(t, "plain", reg.url, migrate.CloudEventsOptions{Key: testKey})
			_, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "f", ID: "id-1", Payload: []byte("p")})
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.text)
			require.ErrorContains(t, err, "target plain")
		})
	}

	t.Run("garbage", func(t *testing.T) {
		reg := startRegion(t, "127.0.0.3", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html>hello</html>"))
		}))
		ct := newTarget(t, "garbage", reg.url, migrate.CloudEventsOptions{Key: testKey})
		_, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "f", ID: "id-1"})
		require.ErrorIs(t, err, migrate.ErrRejected)
		require.ErrorContains(t, err, "not a CloudEvent")
	})
	t.Run("forged answer signature", func(t *testing.T) {
		h := migrate.NewHandler(migrate.HandlerOptions{Key: []byte("another-region-key"), Insecure: true})
		h.Register("f", func(context.Context, []byte) ([]byte, error) { return []byte("ok"), nil }, nil)
		reg := startRegion(t, "127.0.0.3", h)
		ct := newTarget(t, "forger", reg.url, migrate.CloudEventsOptions{Key: testKey})
		_, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "f", ID: "id-1"})
		require.ErrorIs(t, err, migrate.ErrRejected)
		require.ErrorContains(t, err, "signature does not match")
	})
	t.Run("unreachable", func(t *testing.T) {
		reg := startRegion(t, "127.0.0.3", http.NotFoundHandler())
		require.NoError(t, reg.srv.Close())
		ct := newTarget(t, "gone", reg.url, migrate.CloudEventsOptions{Key: testKey})
		_, err := ct.Probe(ctxT(t))
		require.ErrorIs(t, err, migrate.ErrUnreachable)
	})
}

func TestNewCloudEventsTargetValidates(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		opts      migrate.CloudEventsOptions
		want      string
	}{
		{"", "http://127.0.0.2/", migrate.CloudEventsOptions{Region: "r"}, "empty name"},
		{"t", "ftp://127.0.0.2/", migrate.CloudEventsOptions{Region: "r"}, "not an http(s) URL"},
		{"t", "http://127.0.0.2/", migrate.CloudEventsOptions{}, "Region is empty"},
		{"t", "http://127.0.0.2/", migrate.CloudEventsOptions{Region: "r", Key: []byte("short")}, "use at least 16"},
		{"t", "http://127.0.0.2/", migrate.CloudEventsOptions{Region: "r", MaxInFlight: -1}, "CloudEventsOptions.MaxInFlight is -1"},
	} {
		_, err := migrate.NewCloudEventsTarget(tc.name, tc.url, tc.opts)
		require.ErrorContains(t, err, tc.want)
	}
	var fnErr *migrate.FunctionError
	require.False(t, errors.As(errors.New("x"), &fnErr))
}

// A receiver that answers in structured mode (JSON) works too.
func TestTargetReadsStructuredAnswers(t *testing.T) {
	reg := startRegion(t, "127.0.0.3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/cloudevents+json")
		_, _ = w.Write([]byte(`{"specversion":"1.0","id":"a1","source":"structured","type":"` + migrate.EventResult +
			`","datacontenttype":"text/plain","data":"from JSON"}`))
	}))
	ct := newTarget(t, "structured", reg.url, migrate.CloudEventsOptions{Key: testKey})
	out, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "f", ID: "id-1", Payload: []byte("p")})
	require.NoError(t, err)
	require.Equal(t, "from JSON", string(out))
}

// By default a target does not follow a redirect (the CloudEvents webhook
// spec forbids it) and says so; with FollowRedirects, a target with its
// own client (which sends through the transport directly) follows it,
// body and signature intact, as http.Client would, and so does a
// caller's client.
func TestTargetFollowsRedirect(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("echo", func(_ context.Context, p []byte) ([]byte, error) { return append([]byte("echo:"), p...), nil }, nil)
	mux := http.NewServeMux()
	mux.Handle("/fn", h)
	mux.Handle("/old", http.RedirectHandler("/fn", http.StatusPermanentRedirect))
	reg := startRegion(t, "127.0.0.3", mux)
	for _, client := range []*http.Client{nil, {}} {
		ct := newTarget(t, "moved", reg.url+"old", migrate.CloudEventsOptions{Key: testKey, Client: client})
		_, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "echo", ID: "not-redirected", Payload: []byte("hi")})
		require.ErrorIs(t, err, migrate.ErrRejected)
		require.ErrorContains(t, err, `HTTP 308 redirect to "/fn" not followed`)

		ct = newTarget(t, "moved", reg.url+"old", migrate.CloudEventsOptions{Key: testKey, Client: client, FollowRedirects: true})
		out, err := ct.Call(ctxT(t), migrate.Request{Kind: migrate.KindInvoke, Function: "echo", ID: "redirected-1", Payload: []byte("hi")})
		require.NoError(t, err)
		require.Equal(t, "echo:hi", string(out))
	}
}

// CloudEventsOptions.MaxInFlight bounds a lease's deliveries to that
// target below the Mover's Options.MaxInFlight: with eight callers at
// once, the function never runs twice at once there (without the bound,
// up to eight would).
func TestTargetMaxInFlightBoundsDeliveries(t *testing.T) {
	for _, limit := range []int{1, 3} {
		var cur, most atomic.Int32
		h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
		h.Register("work", func(context.Context, []byte) ([]byte, error) {
			n := cur.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			for range 20 {
				runtime.Gosched() // room for another delivery to arrive, were it sent
			}
			cur.Add(-1)
			return nil, nil
		}, nil)
		reg := startRegion(t, "127.0.0.32", h)
		ct := newTarget(t, "bounded", reg.url, migrate.CloudEventsOptions{MaxInFlight: limit})
		require.Equal(t, limit, ct.MaxInFlight())
		m := newMover(t, []migrate.Target{ct}, migrate.Options{MaxInFlight: 16})
		ctx := ctxT(t)
		lease, err := m.Migrate(ctx, fmt.Sprintf("bounded-%d", limit), []migrate.Spec{{Function: "work", Local: func(context.Context, []byte) ([]byte, error) { return nil, nil }}})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 15 {
					if _, err := lease.Invoke(ctx, "work", []byte("x")); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, lease.Return(ctx))
		require.LessOrEqual(t, int(most.Load()), limit, "deliveries at once")
		require.Positive(t, most.Load())
	}
}
