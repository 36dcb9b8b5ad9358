package degradegrpc

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/degrade"
)

// serve starts a real gRPC server on loopback with the health service behind
// the interceptor and returns a client for it.
func serve(t *testing.T, ctl *degrade.Controller) healthpb.HealthClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryServerInterceptor(ctl, nil)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

const service = "grpc.health.v1.Health"

func TestInterceptorOverLoopback(t *testing.T) {
	ctl := degrade.MustNew(degrade.Options{})
	client := serve(t, ctl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var md metadata.MD
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		t.Fatalf("normal call: %v", err)
	}
	if got := md.Get(HeaderDegraded); len(got) != 0 {
		t.Fatalf("degraded header while nothing is degraded: %v", got)
	}

	until := time.Now().Add(5 * time.Minute)
	if err := ctl.Set(service, degrade.Policy{Mode: degrade.Disable}, "the data plane is being updated", until); err != nil {
		t.Fatal(err)
	}
	md = nil
	_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "the data plane is being updated") {
		t.Fatalf("disabled call: %v", err)
	}
	if ra := md.Get(HeaderRetryAfter); len(ra) != 1 {
		t.Fatalf("retry-after header = %v", ra)
	} else if secs, err := strconv.Atoi(ra[0]); err != nil || secs < 240 || secs > 300 {
		t.Fatalf("retry-after header = %q, want about 300 seconds", ra[0])
	}
	if got := md.Get(HeaderDegraded); len(got) != 1 || got[0] != service {
		t.Fatalf("degraded header = %v", got)
	}
	var info *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			info = ri
		}
	}
	if info == nil || info.GetRetryDelay().AsDuration() < 4*time.Minute {
		t.Fatalf("RetryInfo = %v, want about 5 minutes", info)
	}

	if err := ctl.Set(service, degrade.Policy{Mode: degrade.Throttle, RatePerSecond: 0.001}, "update", until); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("first throttled call (the burst): %v", err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second throttled call = %v, want ResourceExhausted", err)
	}

	if err := ctl.Clear(service); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
}

func TestFunctionNames(t *testing.T) {
	if got := ByService("/search.v1.Search/Query"); got != "search.v1.Search" {
		t.Errorf("ByService = %q", got)
	}
	if got := ByMethod("/search.v1.Search/Query"); got != "search.v1.Search/Query" {
		t.Errorf("ByMethod = %q", got)
	}
	if st := StatusOf(errors.New("boom")); st.Code() != codes.Unavailable || st.Message() != "boom" {
		t.Errorf("StatusOf(other) = %v", st)
	}
	defer func() {
		if recover() == nil {
			t.Error("nil controller did not panic")
		}
	}()
	UnaryServerInterceptor(nil, nil)
}

// TestCriticalInterceptorFeedsTheGuard serves the health service over real
// gRPC on loopback behind CriticalUnaryServerInterceptor (and an
// interceptor doing 100 µs of work, the critical work it times) and checks
// that each call reaches the guard once: 10 calls make a step with
// MinSamples 10 judge the critical latency and back off against a 1 µs
// baseline; 9 calls after it are too few for the next step.
func TestCriticalInterceptorFeedsTheGuard(t *testing.T) {
	ctl := degrade.MustNew(degrade.Options{Guard: degrade.GuardOptions{Baseline: time.Microsecond, MinSamples: 10, SchedLatency: -1}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	work := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		time.Sleep(100 * time.Microsecond) // the critical work the interceptor times (not a synchronisation)
		return handler(ctx, req)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(CriticalUnaryServerInterceptor(ctl), work))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(n int) {
		for range n {
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	call(10)
	st := ctl.StepGuard()
	if st.CriticalP90 < 100*time.Microsecond || st.Factor >= 1 || !strings.Contains(st.Why, "critical p90") {
		t.Fatalf("guard step after 10 critical calls of >= 100µs: %+v, want their p90 judged and a back-off", st)
	}
	call(9)
	if st := ctl.StepGuard(); st.CriticalP90 != 0 {
		t.Fatalf("guard step after 9 calls with MinSamples 10: %+v, want no latency judged (each call reported once)", st)
	}
}
