package degradegrpc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/updraft-dev/updraft/degrade"
)

// Response header (metadata) keys set by the interceptor.
const (
	// HeaderRetryAfter carries the retry delay in whole seconds on rejections.
	HeaderRetryAfter = "retry-after"
	// HeaderDegraded lists the degraded functions, as degrade.HeaderDegraded.
	HeaderDegraded = "updraft-degraded"
)

// FunctionFunc names the degrade function a call belongs to, from its full
// method name ("/package.Service/Method").
type FunctionFunc func(fullMethod string) string

// ByService maps a call to its service: "/search.v1.Search/Query" →
// "search.v1.Search".
func ByService(fullMethod string) string {
	service, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return service
}

// ByMethod maps a call to its full method without the leading slash:
// "/search.v1.Search/Query" → "search.v1.Search/Query".
func ByMethod(fullMethod string) string { return strings.TrimPrefix(fullMethod, "/") }

// UnaryServerInterceptor admits every unary call through ctl under the
// function name fn gives it (nil = ByService), releasing the slot when the
// handler returns. The request priority for Shed is normal. It panics if
// ctl is nil (a programmer error at set-up).
func UnaryServerInterceptor(ctl *degrade.Controller, fn FunctionFunc) grpc.UnaryServerInterceptor {
	if ctl == nil {
		panic("degradegrpc: UnaryServerInterceptor: nil controller")
	}
	if fn == nil {
		fn = ByService
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		release, err := ctl.Acquire(fn(info.FullMethod))
		md := metadata.MD{}
		if degraded := ctl.DegradedFunctions(); degraded != "" {
			md.Set(HeaderDegraded, degraded)
		}
		if err != nil {
			var rej *degrade.RejectedError
			if errors.As(err, &rej) {
				md.Set(HeaderRetryAfter, strconv.FormatInt(rej.RetryAfterSeconds(), 10))
			}
			if len(md) > 0 {
				_ = grpc.SetHeader(ctx, md) // fails only outside a server call
			}
			return nil, StatusOf(err).Err()
		}
		defer release()
		if len(md) > 0 {
			_ = grpc.SetHeader(ctx, md)
		}
		return handler(ctx, req)
	}
}

// CriticalUnaryServerInterceptor wraps the unary calls of critical
// functions: it admits every call (it never rejects) and reports each
// call's latency, from entering the interceptor to the handler returning,
// to ctl's critical guard with [degrade.Controller.ObserveCritical], as
// [degrade.Controller.CriticalMiddleware] does for HTTP. Chain it only on
// servers (or behind a selector) whose calls are critical. It panics if
// ctl is nil (a programmer error at set-up).
func CriticalUnaryServerInterceptor(ctl *degrade.Controller) grpc.UnaryServerInterceptor {
	if ctl == nil {
		panic("degradegrpc: CriticalUnaryServerInterceptor: nil controller")
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		defer func() { ctl.ObserveCritical(time.Since(start)) }()
		return handler(ctx, req)
	}
}

// StatusOf converts a rejection from degrade.Controller.Acquire into a gRPC
// status: Unavailable for ErrDisabled and ErrShed, ResourceExhausted for
// ErrThrottled, with the user message and a RetryInfo detail. Other errors
// become Unavailable with their text.
func StatusOf(err error) *status.Status {
	var rej *degrade.RejectedError
	if !errors.As(err, &rej) {
		return status.New(codes.Unavailable, err.Error())
	}
	code := codes.Unavailable
	if errors.Is(rej, degrade.ErrThrottled) {
		code = codes.ResourceExhausted
	}
	st := status.New(code, rej.Message())
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(rej.RetryAfter)}); err == nil {
		st = withInfo
	}
	return st
}
