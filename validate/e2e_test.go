package validate_test

import (
	"context"
	"github.com/updraft-dev/updraft/validate/internal/stats"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft/validate"
)

// version is how one build of the loopback service behaves.
type version struct {
	name       string
	delay      time.Duration // the service's work per request, modelled as a wait
	errorEvery int64         // every n-th request answers 500; 0 never
	body       string
}

var (
	v1          = version{name: "v1", delay: 20 * time.Millisecond, body: `{"route":"10.0.0.0/8","via":"eth0"}`}
	v2Same      = version{name: "v2-same", delay: v1.delay, body: v1.body}
	v2Slow      = version{name: "v2-slow", delay: v1.delay, body: v1.body} // plus the measured baseline median: see slowedBy
	v2Errors    = version{name: "v2-errors", delay: v1.delay, errorEvery: 20, body: v1.body}
	v2WrongBody = version{name: "v2-wrong-body", delay: v1.delay, body: `{"route":"","via":""}`}
)

// service is a real HTTP server on 127.0.0.1 whose version an update swaps.
type service struct {
	srv      *httptest.Server
	current  atomic.Pointer[version]
	requests atomic.Int64
}

func newService(t *testing.T) *service {
	s := &service{}
	s.current.Store(&v1)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.current.Load()
		n := s.requests.Add(1)
		select { // the request's work: a wait of the version's latency
		case <-time.After(v.delay):
		case <-r.Context().Done():
			return
		}
		if v.errorEvery > 0 && n%v.errorEvery == 0 {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, v.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// hostUpdate is the host's Update: Apply swaps in the new version,
// Rollback restores the old one.
type hostUpdate struct {
	svc       *service
	to        *version
	rollbacks int
}

func (u *hostUpdate) Apply(context.Context) error { u.svc.current.Store(u.to); return nil }
func (u *hostUpdate) Rollback(context.Context) error {
	u.rollbacks++
	u.svc.current.Store(&v1)
	return nil
}

func sorted(s []float64) []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// load sends n requests from 8 workers and records each latency and
// whether it failed, as a host's middleware would.
func load(t *testing.T, url string, n int, lat *validate.Recorder, errs *validate.Counter) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				start := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat.ObserveDuration(time.Since(start))
				errs.Add(err != nil || resp.StatusCode != http.StatusOK)
			}
		})
	}
	wg.Wait()
}

// TestUpdateValidatedOnLoopback drives a real service through an update
// the way the Orchestrator does — baseline, apply, validate, roll back on
// fail — for a good version and three bad ones.
func TestUpdateValidatedOnLoopback(t *testing.T) {
	for _, c := range []struct {
		to          version
		doubled     bool // the new version adds the baseline's median latency: 2× latency end to end
		want        validate.Verdict
		failedCheck string
	}{
		{v2Same, false, validate.Pass, ""},
		{v2Slow, true, validate.Fail, "latency"},
		{v2Errors, false, validate.Fail, "errors"},
		{v2WrongBody, false, validate.Fail, "route body"},
	} {
		t.Run(c.to.name, func(t *testing.T) {
			ctx := context.Background()
			svc := newService(t)
			lat, errs := validate.NewRecorder(0), &validate.Counter{}
			latency, err := validate.NewMetricComparison("latency", lat, validate.MetricOptions{Unit: "ms", Tolerance: 0.5})
			require.NoError(t, err)
			errRate, err := validate.NewRateComparison("errors", errs, validate.RateOptions{Events: "non-200 answers"})
			require.NoError(t, err)
			body, err := validate.NewHTTPProbe("route body", svc.srv.URL, validate.HTTPProbeOptions{BodyContains: `"route":"10.0.0.0/8"`})
			require.NoError(t, err)
			suite, err := validate.New([]validate.Check{body, latency, errRate}, validate.Options{Timeout: 30 * time.Second, Retries: 1, RetryDelay: time.Millisecond})
			require.NoError(t, err)

			load(t, svc.srv.URL, 200, lat, errs)
			baseline, err := lat.Samples(ctx) // peek at the baseline, then give it back
			require.NoError(t, err)
			for _, v := range baseline {
				lat.Observe(v)
			}
			require.NoError(t, suite.RecordBaseline(ctx))
			if c.doubled {
				median := stats.Quantile(sorted(baseline), 0.5)
				c.to.delay += time.Duration(median * float64(time.Millisecond))
			}
			up := &hostUpdate{svc: svc, to: &c.to}
			require.NoError(t, up.Apply(ctx))
			load(t, svc.srv.URL, 200, lat, errs)
			rep, err := suite.Validate(ctx)
			require.NoError(t, err)
			t.Logf("%s", rep)
			if rep.Verdict == validate.Fail {
				require.NoError(t, up.Rollback(ctx))
			}

			require.Equal(t, c.want, rep.Verdict, "%s", rep)
			if c.want == validate.Pass {
				require.Zero(t, up.rollbacks)
				require.Equal(t, c.to.name, svc.current.Load().name)
				return
			}
			require.Equal(t, 1, up.rollbacks)
			require.Equal(t, "v1", svc.current.Load().name, "rollback restored the old version")
			failed := rep.Failed()
			require.Len(t, failed, 1, "only the broken aspect fails: %s", rep)
			require.Equal(t, c.failedCheck, failed[0].Check)
			require.ErrorIs(t, rep.Err(), validate.ErrCheckFailed)
			r := body.Run(ctx)
			require.Equal(t, validate.Pass, r.Verdict, "the rolled-back service answers correctly again: %v", r.Err)
		})
	}
}
