package migrate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/migrate"
)

// functionURL plays the part of an AWS Lambda function URL's front end
// (InvokeMode RESPONSE_STREAM) in front of fn: it turns each HTTP request
// into the events.LambdaFunctionURLRequest Lambda would hand the function
// (header names lower-cased, values of one name joined by commas, the
// body base64) and writes the streaming response back. What runs inside
// is the aws-lambda-go library's own lambdaurl.Wrap; the Lambda runtime
// loop (lambda.Start) and AWS's real front end are not part of the test.
func functionURL(fn func(ctx context.Context, req *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := &events.LambdaFunctionURLRequest{RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
			Headers: map[string]string{}, Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
		req.RequestContext.DomainName = r.Host
		req.RequestContext.HTTP.Method = r.Method
		req.RequestContext.HTTP.SourceIP = r.RemoteAddr
		for k, v := range r.Header {
			req.Headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		resp, err := fn(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		var out bytes.Buffer
		_, _ = io.Copy(&out, resp.Body)
		w.Header().Set("Content-Length", fmt.Sprint(out.Len()))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out.Bytes())
	})
}

// A stateful function hosted as an AWS Lambda function behind a function
// URL (migrate.Handler wrapped by aws-lambda-go's lambdaurl.Wrap): its
// state goes there, every invocation takes effect once, and Return brings
// the state home.
func TestLambdaFunctionURLTarget(t *testing.T) {
	h := migrate.NewHandler(migrate.HandlerOptions{Key: testKey})
	remote := &migrate.MapState{}
	h.Register("count", count(remote), remote)
	reg := startRegion(t, "127.0.0.29", functionURL(lambdaurl.Wrap(h)))
	m := newMover(t, []migrate.Target{newTarget(t, "lambda", reg.url, migrate.CloudEventsOptions{Provider: "aws-lambda"})}, migrate.Options{CheckpointEvery: 7})
	home := &migrate.MapState{}
	ctx := ctxT(t)
	lease, err := m.Migrate(ctx, "lambda-lease", []migrate.Spec{{Function: "count", Local: count(home), State: home}})
	require.NoError(t, err)
	require.Equal(t, "lambda", lease.Placements()[0].Target)
	const n = 40
	for i := range n {
		_, err := lease.Invoke(ctx, "count", []byte(fmt.Sprintf("k%d", i%4)))
		require.NoError(t, err)
	}
	require.NoError(t, lease.Return(ctx))
	require.Equal(t, map[string]int64{"k0": 10, "k1": 10, "k2": 10, "k3": 10}, home.Snapshot(), "every invocation took effect once, and came home")
}
