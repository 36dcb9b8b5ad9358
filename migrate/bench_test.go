package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"

	"github.com/updraft-dev/updraft/migrate"
)

// benchRegion serves count on one server at 127.0.0.2 twice: through a
// migrate.Handler at / and as a plain HTTP handler at /plain, so a lease's
// invocation and a plain POST are measured against the same server.
func benchRegion(b *testing.B) (*region, *migrate.MapState) {
	b.Helper()
	st := &migrate.MapState{}
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("count", count(st), st)
	remote := &migrate.MapState{}
	plain := count(remote)
	mux := http.NewServeMux()
	mux.Handle("/", h)
	// plainHandler runs the function on the body and answers with its
	// result; withHeaders sets the header lines first.
	plainHandler := func(withHeaders func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			out, err := plain(r.Context(), body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if withHeaders != nil {
				withHeaders(w, r)
			}
			_, _ = w.Write(out)
		}
	}
	mux.Handle("/plain", plainHandler(nil))
	// The header lines of a Handler's answer, on the plain handler.
	mux.Handle("/plain-ce", plainHandler(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Ce-Specversion"] = ceSpecVersion
		h["Ce-Id"] = r.Header["Ce-Id"]
		h["Ce-Source"] = ceHandlerSource
		h["Ce-Type"] = ceResult
		h["Ce-Updraftsig"] = r.Header["Ce-Updraftsig"]
		h["Content-Type"] = ceOctetStream
	}))
	return startRegion(b, "127.0.0.2", mux), st
}

// Header values of the plain-post-with-ce-headers variant, made once.
var (
	ceSpecVersion   = []string{"1.0"}
	ceHandlerSource = []string{"updraft/handler"}
	ceResult        = []string{migrate.EventResult}
	ceOctetStream   = []string{"application/octet-stream"}
)

// BenchmarkInvoke measures one invocation through a lease (buffered on
// disk, signed, CloudEvents binary mode, deduplicated, checkpointed every
// DefaultCheckpointEvery) beside a plain HTTP POST of the same payload to
// the same server. Two more sub-benchmarks split the gap: the plain POST
// carrying the CloudEvents headers (what net/http charges for them), and
// one signed call straight through a CloudEventsTarget (the protocol
// without the lease).
func BenchmarkInvoke(b *testing.B) {
	reg, _ := benchRegion(b)
	payload := bytes.Repeat([]byte("k"), 64)
	ctx := context.Background()

	b.Run("baseline=plain-post", func(b *testing.B) {
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			resp, err := client.Post(reg.url+"plain", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	// The same plain POST carrying the header lines a lease's request and
	// a Handler's answer carry (CloudEvents binary mode, the time inside
	// the signature, no User-Agent or Accept-Encoding), to show what the
	// protocol's headers themselves cost.
	b.Run("plain-post-with-ce-headers", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		client := &http.Client{Transport: tr}
		post := ceHeadersPost(client, reg.url, payload)
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if err := post(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The protocol without the lease: one signed invocation straight
	// through a CloudEventsTarget (no buffer, no dispatcher, no timeout),
	// each with an id of its own.
	b.Run("target-call", func(b *testing.B) {
		target := newTarget(b, "r0", reg.url, migrate.CloudEventsOptions{Key: testKey})
		prefix := fmt.Sprintf("bench-call-%d.", time.Now().UnixNano())
		i := 0
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			i++
			req := migrate.Request{Kind: migrate.KindInvoke, Function: "count", ID: prefix + strconv.Itoa(i), Payload: payload}
			if _, err := target.Call(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a user would pick instead: the same CloudEvent (binary mode,
	// the same data) sent by the cloudevents SDK's client to a receiver
	// built with the SDK that runs the same function and answers with an
	// event, as the Handler does. No signature, no buffer, no durability.
	b.Run("baseline=sdk-client-to-sdk-receiver", func(b *testing.B) {
		remote := &migrate.MapState{}
		run := count(remote)
		p, err := cloudevents.NewHTTP()
		if err != nil {
			b.Fatal(err)
		}
		h, err := cloudevents.NewHTTPReceiveHandler(ctx, p, func(ev event.Event) (*event.Event, protocol.Result) {
			out, err := run(ctx, ev.Data())
			if err != nil {
				return nil, err
			}
			ans := cloudevents.NewEvent()
			ans.SetID(ev.ID())
			ans.SetSource("sdk-receiver")
			ans.SetType(migrate.EventResult)
			_ = ans.SetData("application/octet-stream", out)
			return &ans, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		sdkReg := startRegion(b, "127.0.0.2", h)
		c, err := cloudevents.NewClientHTTP()
		if err != nil {
			b.Fatal(err)
		}
		target := cloudevents.ContextWithTarget(ctx, sdkReg.url)
		i := 0
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			i++
			ev := cloudevents.NewEvent()
			ev.SetID("sdk-" + strconv.Itoa(i))
			ev.SetSource("updraft/lease")
			ev.SetType(migrate.EventInvoke)
			ev.SetSubject("count")
			_ = ev.SetData("application/octet-stream", payload)
			ans, res := c.Request(target, ev)
			if !cloudevents.IsACK(res) || ans == nil {
				b.Fatalf("SDK request: %v", res)
			}
		}
	})
	for _, sync := range []bool{true, false} {
		name := map[bool]string{true: "lease", false: "lease-nosync"}[sync]
		b.Run(name, func(b *testing.B) {
			m := newMover(b, []migrate.Target{newTarget(b, "r1"+name, reg.url, migrate.CloudEventsOptions{})}, migrate.Options{NoSync: !sync})
			home := &migrate.MapState{}
			lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := lease.Return(ctx); err != nil {
					b.Error(err)
				}
			}()
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := lease.Invoke(ctx, "count", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ceHeadersPost returns a plain POST of payload carrying the header lines
// a lease's request and a Handler's answer carry (CloudEvents binary mode,
// the time inside the signature, no User-Agent or Accept-Encoding; the
// region's /plain-ce answers with an answer's lines), to show what the
// protocol's headers themselves cost. client must not ask for compression.
func ceHeadersPost(client *http.Client, url string, payload []byte) func() error {
	h := http.Header{
		"Ce-Specversion": {"1.0"},
		"Ce-Id":          {"abcdef012345.count.12345"},
		"Ce-Source":      {"updraft/lease"},
		"Ce-Type":        {migrate.EventInvoke},
		"Ce-Subject":     {"count"},
		"Ce-Updraftsig":  {"t=" + strconv.FormatInt(time.Now().UnixNano(), 10) + ",v1=" + strings.Repeat("s", 43)},
		"Ce-Updraftgen":  {"abcdef012345.count.g1"},
		"Content-Type":   {"application/octet-stream"},
		"User-Agent":     {""},
	}
	return func() error {
		req, err := http.NewRequest(http.MethodPost, url+"plain-ce", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header = h // the transport only reads it
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// BenchmarkInvokePaired alternates one plain POST and one call of another
// kind in each iteration, so that load from other processes hits both
// alike, and reports each one's mean and their ratio. vs=lease is the
// figure against the aim; vs=ce-headers (the protocol's header lines
// alone) and vs=target-call (one signed call through a CloudEventsTarget:
// the protocol and its authentication, without the lease) show how much
// of the gap the protocol the issue asks for leaves to the lease.
func BenchmarkInvokePaired(b *testing.B) {
	reg, _ := benchRegion(b)
	payload := bytes.Repeat([]byte("k"), 64)
	ctx := context.Background()
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	plainPost := func() error {
		resp, err := client.Post(reg.url+"plain", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	ceTransport := http.DefaultTransport.(*http.Transport).Clone()
	ceTransport.DisableCompression = true
	target := newTarget(b, "r0", reg.url, migrate.CloudEventsOptions{Key: testKey})
	prefix := fmt.Sprintf("bench-paired-%d.", time.Now().UnixNano())
	calls := 0
	m := newMover(b, []migrate.Target{newTarget(b, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{})
	home := &migrate.MapState{}
	lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := lease.Return(ctx); err != nil {
			b.Error(err)
		}
	}()
	for _, other := range []struct {
		name string
		call func() error
	}{
		{"vs=ce-headers", ceHeadersPost(&http.Client{Transport: ceTransport}, reg.url, payload)},
		{"vs=target-call", func() error {
			calls++
			_, err := target.Call(ctx, migrate.Request{Kind: migrate.KindInvoke, Function: "count", ID: prefix + strconv.Itoa(calls), Payload: payload})
			return err
		}},
		{"vs=lease", func() error { _, err := lease.Invoke(ctx, "count", payload); return err }},
	} {
		b.Run(other.name, func(b *testing.B) {
			var plain, theirs time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := plainPost(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := other.call(); err != nil {
					b.Fatal(err)
				}
				plain += t1.Sub(t0)
				theirs += time.Since(t1)
			}
			b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/op")
			b.ReportMetric(float64(theirs.Nanoseconds())/float64(b.N), "other-ns/op")
			b.ReportMetric(float64(theirs)/float64(plain), "other/plain")
		})
	}
}

// BenchmarkCutover measures, with a warm target, the time from the
// decision (Migrate) to the first invocation served remotely, and from
// Return to the first invocation served at home again; the baseline is one
// plain invocation through a lease already in place.
func BenchmarkCutover(b *testing.B) {
	reg, _ := benchRegion(b)
	target := newTarget(b, "r1", reg.url, migrate.CloudEventsOptions{})
	m := newMover(b, []migrate.Target{target}, migrate.Options{})
	home := &migrate.MapState{}
	for i := range 1000 {
		home.Add(string(rune('a'+i%26))+string(rune('a'+i/26%26)), 1)
	}
	specs := []migrate.Spec{{Function: "count", Local: count(home), State: home}}
	ctx := context.Background()
	payload := []byte("cutover")

	b.Run("baseline=invoke", func(b *testing.B) {
		lease, err := m.Migrate(ctx, "", specs)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := lease.Invoke(ctx, "count", payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := lease.Return(ctx); err != nil {
			b.Fatal(err)
		}
	})
	// out migrates the function and serves its first invocation remotely.
	out := func(b *testing.B) *migrate.Lease {
		lease, err := m.Migrate(ctx, "", specs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := lease.Invoke(ctx, "count", payload); err != nil {
			b.Fatal(err)
		}
		return lease
	}
	b.Run("out=migrate+first-remote-invoke", func(b *testing.B) {
		for b.Loop() {
			lease := out(b)
			b.StopTimer()
			if err := lease.Return(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("back=return+first-local-invoke", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			lease := out(b)
			b.StartTimer()
			if err := lease.Return(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := lease.Invoke(ctx, "count", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInvokeParallel is BenchmarkInvoke with concurrent callers
// (b.RunParallel, 8×GOMAXPROCS goroutines): the lease delivers up to
// MaxInFlight invocations of the function at once.
func BenchmarkInvokeParallel(b *testing.B) {
	reg, _ := benchRegion(b)
	payload := bytes.Repeat([]byte("k"), 64)
	ctx := context.Background()
	b.Run("baseline=plain-post", func(b *testing.B) {
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(reg.url+"plain", "application/octet-stream", bytes.NewReader(payload))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
	// What a user would pick instead: the same CloudEvent (binary mode,
	// the same data) sent by the cloudevents SDK's client to a receiver
	// built with the SDK that runs the same function and answers with an
	// event, as the Handler does. No signature, no buffer, no durability.
	b.Run("baseline=sdk-client-to-sdk-receiver", func(b *testing.B) {
		remote := &migrate.MapState{}
		run := count(remote)
		p, err := cloudevents.NewHTTP()
		if err != nil {
			b.Fatal(err)
		}
		h, err := cloudevents.NewHTTPReceiveHandler(ctx, p, func(ev event.Event) (*event.Event, protocol.Result) {
			out, err := run(ctx, ev.Data())
			if err != nil {
				return nil, err
			}
			ans := cloudevents.NewEvent()
			ans.SetID(ev.ID())
			ans.SetSource("sdk-receiver")
			ans.SetType(migrate.EventResult)
			_ = ans.SetData("application/octet-stream", out)
			return &ans, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		sdkReg := startRegion(b, "127.0.0.2", h)
		c, err := cloudevents.NewClientHTTP()
		if err != nil {
			b.Fatal(err)
		}
		target := cloudevents.ContextWithTarget(ctx, sdkReg.url)
		i := 0
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			i++
			ev := cloudevents.NewEvent()
			ev.SetID("sdk-" + strconv.Itoa(i))
			ev.SetSource("updraft/lease")
			ev.SetType(migrate.EventInvoke)
			ev.SetSubject("count")
			_ = ev.SetData("application/octet-stream", payload)
			ans, res := c.Request(target, ev)
			if !cloudevents.IsACK(res) || ans == nil {
				b.Fatalf("SDK request: %v", res)
			}
		}
	})
	b.Run("lease", func(b *testing.B) {
		m := newMover(b, []migrate.Target{newTarget(b, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{})
		home := &migrate.MapState{}
		lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
		if err != nil {
			b.Fatal(err)
		}
		invokeInParallel(b, lease, "count", payload)
	})
}

// invokeInParallel calls fn through lease from 8×GOMAXPROCS goroutines
// for b.N calls in all, then returns the lease.
func invokeInParallel(b *testing.B, lease *migrate.Lease, fn string, payload []byte) {
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := lease.Invoke(ctx, fn, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := lease.Return(ctx); err != nil {
		b.Error(err)
	}
}

// BenchmarkInvokeSlowTarget stands in for a distant region: the remote
// function takes 2 ms (a WAN round trip's worth). With 16 concurrent
// callers, a window of 1 (strict one-at-a-time delivery) is the baseline
// for the default window of DefaultMaxInFlight.
func BenchmarkInvokeSlowTarget(b *testing.B) {
	slow := func(_ context.Context, p []byte) ([]byte, error) {
		time.Sleep(2 * time.Millisecond) // simulated distance, not synchronisation
		return p, nil
	}
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	h.Register("slow", slow, nil)
	reg := startRegion(b, "127.0.0.2", h)
	payload := []byte("far away")
	ctx := context.Background()
	for _, window := range []int{1, migrate.DefaultMaxInFlight} {
		name := fmt.Sprintf("window=%d", window)
		if window == 1 {
			name = "baseline=" + name
		}
		b.Run(name, func(b *testing.B) {
			m := newMover(b, []migrate.Target{newTarget(b, "far", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{MaxInFlight: window})
			lease, err := m.Migrate(ctx, "", []migrate.Spec{{Function: "slow", Local: slow}})
			if err != nil {
				b.Fatal(err)
			}
			invokeInParallel(b, lease, "slow", payload) // 16 callers on 2 cores
		})
	}
}
