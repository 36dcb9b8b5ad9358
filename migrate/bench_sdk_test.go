package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/updraft-dev/updraft/migrate"
)

// BenchmarkInvokeVsSDK is issue 16's aim: in each iteration, one
// invocation through a lease (buffered, fsynced, signed, deduplicated by
// a Handler, stateful, checkpointed), the same 64-byte event sent with
// the cloudevents SDK's client to a receiver built with the SDK (which
// counts and answers with an event, unsigned, nothing buffered), and a
// bare POST of the payload, interleaved so that load from other
// processes hits all alike. It reports each one's mean and lease/sdk, the
// figure against the aim (≤ 1). Since a lease's invocation is durable
// before it is delivered, a fourth side is the fair baseline: the SDK
// call preceded by an append and fsync of the payload to a file
// (sdk+fsync); lease/sdk+fsync compares like with like. The sides that
// do not fsync are measured beside the fsyncs of the others, which slow
// them (the SDK side measured 2-2.5x its time in
// BenchmarkInvokeNoSyncVsSDK): the figure without durability on either
// side is BenchmarkInvokeNoSyncVsSDK's.
func BenchmarkInvokeVsSDK(b *testing.B) {
	ctx := context.Background()
	payload := bytes.Repeat([]byte("k"), 64)

	// The SDK side: a receiver that counts per id and answers.
	var mu sync.Mutex
	seen := map[string]int{}
	p, err := cloudevents.NewHTTP()
	if err != nil {
		b.Fatal(err)
	}
	rh, err := cloudevents.NewHTTPReceiveHandler(ctx, p, func(ev event.Event) (*event.Event, protocol.Result) {
		mu.Lock()
		seen[ev.ID()]++
		n := len(seen)
		mu.Unlock()
		ans := cloudevents.NewEvent()
		ans.SetID(ev.ID())
		ans.SetSource("sdk-receiver")
		ans.SetType(migrate.EventResult)
		_ = ans.SetData("application/octet-stream", []byte(strconv.Itoa(n)))
		return &ans, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sdkReg := startRegion(b, "127.0.0.28", rh)
	sdkClient, err := cloudevents.NewClientHTTP(cehttp.WithTarget(sdkReg.url))
	if err != nil {
		b.Fatal(err)
	}
	sdkN := 0
	sdkCall := func() error {
		sdkN++
		ev := cloudevents.NewEvent()
		ev.SetID("sdk-" + strconv.Itoa(sdkN))
		ev.SetSource("updraft/lease")
		ev.SetType(migrate.EventInvoke)
		ev.SetSubject("count")
		_ = ev.SetData("application/octet-stream", payload)
		resp, res := sdkClient.Request(ctx, ev)
		if !protocol.IsACK(res) || resp == nil {
			return res
		}
		return nil
	}

	// The lease side, and the bare POST, against a Handler.
	reg, _ := benchRegion(b)
	m := newMover(b, []migrate.Target{newTarget(b, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{})
	home := &migrate.MapState{}
	lease, err := m.Migrate(ctx, "bench-vs-sdk", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := lease.Return(ctx); err != nil {
			b.Error(err)
		}
	}()
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	plainPost := func() error {
		resp, err := client.Post(reg.url+"plain", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}

	wal, err := os.Create(filepath.Join(b.TempDir(), "sdk.wal"))
	if err != nil {
		b.Fatal(err)
	}
	defer wal.Close()
	sdkDurable := func() error {
		if _, err := wal.Write(payload); err != nil {
			return err
		}
		if err := wal.Sync(); err != nil {
			return err
		}
		return sdkCall()
	}

	var tLease, tSDK, tPlain, tDurable time.Duration
	for b.Loop() {
		t3 := time.Now()
		if err := sdkDurable(); err != nil {
			b.Fatal(err)
		}
		tDurable += time.Since(t3)
		t0 := time.Now()
		if _, err := lease.Invoke(ctx, "count", payload); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := sdkCall(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := plainPost(); err != nil {
			b.Fatal(err)
		}
		tLease, tSDK, tPlain = tLease+t1.Sub(t0), tSDK+t2.Sub(t1), tPlain+time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tLease.Nanoseconds())/n, "lease-ns/op")
	b.ReportMetric(float64(tSDK.Nanoseconds())/n, "sdk-ns/op")
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(float64(tLease)/float64(tSDK), "lease/sdk")
	b.ReportMetric(float64(tLease)/float64(tPlain), "lease/plain")
	b.ReportMetric(float64(tDurable.Nanoseconds())/n, "sdk+fsync-ns/op")
	b.ReportMetric(float64(tLease)/float64(tDurable), "lease/sdk+fsync")
	mu.Lock()
	for id, c := range seen {
		if c != 1 {
			b.Fatalf("the SDK receiver saw %s %d times", id, c)
		}
	}
	mu.Unlock()
}

// BenchmarkInvokeNoSyncVsSDK is issue 16's aim without durability on
// either side: in each iteration, one invocation through a lease with
// Options.NoSync (buffered in the page cache, signed, deduplicated by a
// Handler, stateful, checkpointed every DefaultCheckpointEvery), the same
// 64-byte event through the cloudevents SDK's client to a receiver built
// with the SDK (which counts per id and answers with an event), and a
// bare POST of the payload to the Handler's server, in an order that
// rotates each iteration so that neither side always follows the other.
// It reports each one's mean, nosync/sdk (the aim: ≤ 1) and
// nosync/plain.
func BenchmarkInvokeNoSyncVsSDK(b *testing.B) {
	ctx := context.Background()
	payload := bytes.Repeat([]byte("k"), 64)
	var mu sync.Mutex
	seen := map[string]int{}
	p, err := cloudevents.NewHTTP()
	if err != nil {
		b.Fatal(err)
	}
	rh, err := cloudevents.NewHTTPReceiveHandler(ctx, p, func(ev event.Event) (*event.Event, protocol.Result) {
		mu.Lock()
		seen[ev.ID()]++
		n := len(seen)
		mu.Unlock()
		ans := cloudevents.NewEvent()
		ans.SetID(ev.ID())
		ans.SetSource("sdk-receiver")
		ans.SetType(migrate.EventResult)
		_ = ans.SetData("application/octet-stream", []byte(strconv.Itoa(n)))
		return &ans, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sdkReg := startRegion(b, "127.0.0.28", rh)
	sdkClient, err := cloudevents.NewClientHTTP(cehttp.WithTarget(sdkReg.url))
	if err != nil {
		b.Fatal(err)
	}
	sdkN := 0
	sdkCall := func() error {
		sdkN++
		ev := cloudevents.NewEvent()
		ev.SetID("sdk-" + strconv.Itoa(sdkN))
		ev.SetSource("updraft/lease")
		ev.SetType(migrate.EventInvoke)
		ev.SetSubject("count")
		_ = ev.SetData("application/octet-stream", payload)
		resp, res := sdkClient.Request(ctx, ev)
		if !protocol.IsACK(res) || resp == nil {
			return fmt.Errorf("SDK request: %v", res)
		}
		return nil
	}

	reg, _ := benchRegion(b)
	m := newMover(b, []migrate.Target{newTarget(b, "r1", reg.url, migrate.CloudEventsOptions{})}, migrate.Options{NoSync: true})
	home := &migrate.MapState{}
	lease, err := m.Migrate(ctx, "bench-nosync-vs-sdk", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := lease.Return(ctx); err != nil {
			b.Error(err)
		}
	}()
	leaseCall := func() error {
		_, err := lease.Invoke(ctx, "count", payload)
		return err
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	plainPost := func() error {
		resp, err := client.Post(reg.url+"plain", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}

	sides := []func() error{leaseCall, sdkCall, plainPost}
	var spent [3]time.Duration
	i := 0
	for b.Loop() {
		for k := range sides {
			j := (i + k) % len(sides)
			t0 := time.Now()
			if err := sides[j](); err != nil {
				b.Fatal(err)
			}
			spent[j] += time.Since(t0)
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(spent[0].Nanoseconds())/n, "nosync-ns/op")
	b.ReportMetric(float64(spent[1].Nanoseconds())/n, "sdk-ns/op")
	b.ReportMetric(float64(spent[2].Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "nosync/sdk")
	b.ReportMetric(float64(spent[0])/float64(spent[2]), "nosync/plain")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != sdkN {
		b.Fatalf("the SDK receiver saw %d ids, %d sent", len(seen), sdkN)
	}
	for id, c := range seen {
		if c != 1 {
			b.Fatalf("the SDK receiver saw %s %d times", id, c)
		}
	}
}
