package validate_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/validate"
)

// closedAddress returns a loopback address nothing listens on: a port that
// was just bound and released.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestHTTPProbeAgainstARealServer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"ok","version":"2"}`) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "db down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.Header.Get("X-Probe"))
	})
	srv := httptest.NewServer(mux) // a real server on 127.0.0.1
	defer srv.Close()

	probe := func(path string, opts validate.HTTPProbeOptions) validate.Result {
		p, err := validate.NewHTTPProbe("p", srv.URL+path, opts)
		require.NoError(t, err)
		return p.Run(context.Background())
	}

	r := probe("/health", validate.HTTPProbeOptions{BodyContains: `"status":"ok"`, BodyMatches: regexp.MustCompile(`"version":"\d+"`), MaxLatency: 10 * time.Second})
	require.Equal(t, validate.Pass, r.Verdict, "%v %v", r.Err, r.Evidence)
	require.Contains(t, r.Evidence[0], "→ 200 in")
	require.Contains(t, r.Evidence[1], `body contains "\"status\":\"ok\"": true`)

	r = probe("/broken", validate.HTTPProbeOptions{})
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrUnexpectedStatus)
	require.ErrorContains(t, r.Err, "503 (Service Unavailable), want 2xx")

	r = probe("/broken", validate.HTTPProbeOptions{Status: []int{503}})
	require.Equal(t, validate.Pass, r.Verdict, "an accepted status passes")

	r = probe("/health", validate.HTTPProbeOptions{BodyContains: `"version":"3"`})
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrBodyMismatch)
	require.ErrorContains(t, r.Err, `starts "{\"status\":\"ok\"`)

	r = probe("/health", validate.HTTPProbeOptions{MaxLatency: time.Nanosecond}) // no real request is that fast
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorIs(t, r.Err, validate.ErrTooSlow)

	r = probe("/echo", validate.HTTPProbeOptions{Method: http.MethodPost, Header: http.Header{"X-Probe": {"yes"}}, BodyContains: "POST yes"})
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Err)
}

func TestHTTPProbeUnreachableFails(t *testing.T) {
	p, err := validate.NewHTTPProbe("gone", "http://"+closedAddress(t)+"/health", validate.HTTPProbeOptions{})
	require.NoError(t, err)
	r := p.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorContains(t, r.Err, "connection refused")
	require.Contains(t, r.Evidence[0], "no response")
}

func TestHTTPProbeDoesNotFollowRedirectsByDefault(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer srv.Close()
	p, err := validate.NewHTTPProbe("redir", srv.URL, validate.HTTPProbeOptions{})
	require.NoError(t, err)
	r := p.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict, "a redirect is not a 2xx answer from the service")
	require.ErrorContains(t, r.Err, "302")
}

func TestNewHTTPProbeValidates(t *testing.T) {
	for _, c := range []struct {
		name, url string
		opts      validate.HTTPProbeOptions
		want      string
	}{
		{"", "http://127.0.0.1/", validate.HTTPProbeOptions{}, "empty name"},
		{"p", "ftp://127.0.0.1/", validate.HTTPProbeOptions{}, "scheme must be http or https"},
		{"p", "http:///path", validate.HTTPProbeOptions{}, "has no host"},
		{"p", "http://[::1/", validate.HTTPProbeOptions{}, "URL"},
		{"p", "http://127.0.0.1/", validate.HTTPProbeOptions{Method: "GE T"}, "Method"},
		{"p", "http://127.0.0.1/", validate.HTTPProbeOptions{Status: []int{200, 99}}, "Status[1] 99"},
		{"p", "http://127.0.0.1/", validate.HTTPProbeOptions{MaxLatency: -1}, "MaxLatency"},
		{"p", "http://127.0.0.1/", validate.HTTPProbeOptions{MaxBodyBytes: -1}, "MaxBodyBytes"},
	} {
		_, err := validate.NewHTTPProbe(c.name, c.url, c.opts)
		require.ErrorContains(t, err, c.want, c.url)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() { // accept and drop connections until the listener closes
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p, err := validate.NewTCPProbe("listener", l.Addr().String(), validate.TCPProbeOptions{MaxLatency: 10 * time.Second})
	require.NoError(t, err)
	r := p.Run(context.Background())
	require.Equal(t, validate.Pass, r.Verdict, "%v", r.Err)
	require.Contains(t, r.Evidence[0], "accepted in")

	p, err = validate.NewTCPProbe("slow", l.Addr().String(), validate.TCPProbeOptions{MaxLatency: time.Nanosecond})
	require.NoError(t, err)
	require.ErrorIs(t, p.Run(context.Background()).Err, validate.ErrTooSlow)

	p, err = validate.NewTCPProbe("gone", closedAddress(t), validate.TCPProbeOptions{})
	require.NoError(t, err)
	r = p.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict)
	require.ErrorContains(t, r.Err, "connection refused")

	for _, bad := range []string{"127.0.0.1", ":80", "127.0.0.1:"} {
		_, err := validate.NewTCPProbe("p", bad, validate.TCPProbeOptions{})
		require.Error(t, err, bad)
	}
	_, err = validate.NewTCPProbe("", "127.0.0.1:1", validate.TCPProbeOptions{})
	require.ErrorContains(t, err, "empty name")
}

func TestSmoke(t *testing.T) {
	var ran []string
	step := func(name string, err error) validate.Step {
		return validate.Step{Name: name, Run: func(context.Context) error { ran = append(ran, name); return err }}
	}
	s, err := validate.NewSmoke("session", step("create", nil), step("forward", nil), step("teardown", nil))
	require.NoError(t, err)
	r := s.Run(context.Background())
	require.Equal(t, validate.Pass, r.Verdict)
	require.Len(t, r.Evidence, 3)

	ran = nil
	s, err = validate.NewSmoke("session", step("create", nil), step("forward", fmt.Errorf("no route")), step("teardown", nil))
	require.NoError(t, err)
	r = s.Run(context.Background())
	require.Equal(t, validate.Fail, r.Verdict)
	require.Equal(t, []string{"create", "forward"}, ran, "stops at the first failing step")
	require.InDelta(t, 1.0/3, r.Score, 1e-12)
	require.ErrorContains(t, r.Err, `step "forward": no route`)
	require.Contains(t, r.Evidence[2], `step 3 "teardown": not run`)

	_, err = validate.NewSmoke("x")
	require.ErrorContains(t, err, "no steps")
	_, err = validate.NewSmoke("x", step("a", nil), step("a", nil))
	require.ErrorContains(t, err, `duplicate step name "a"`)
	_, err = validate.NewSmoke("x", validate.Step{Name: "a"})
	require.ErrorContains(t, err, `step "a" has a nil function`)
	_, err = validate.NewSmoke("x", validate.Step{Run: func(context.Context) error { return nil }})
	require.ErrorContains(t, err, "step 0 has an empty name")
}
