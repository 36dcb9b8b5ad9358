package updraft_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/hal/sim"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// service is a real HTTP service on loopback whose "version" the update
// changes: v2 answers twice as slowly, or with the wrong body.
type service struct {
	srv     *httptest.Server
	slow    atomic.Bool
	corrupt atomic.Bool
}

func newService(t *testing.T) *service {
	s := &service{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		work := 3 * time.Millisecond // the service's own work per request
		if s.slow.Load() {
			work *= 2
		}
		time.Sleep(work)
		if s.corrupt.Load() {
			fmt.Fprint(w, "route table: empty")
			return
		}
		fmt.Fprint(w, "route table: 2 routes")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// latencies sends n requests and returns their latencies in milliseconds.
func (s *service) latencies(ctx context.Context, n int) ([]float64, error) {
	out := make([]float64, 0, n)
	for range n {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, float64(time.Since(start).Microseconds())/1000)
	}
	return out, nil
}

// TestValidationAgainstBaselineRollsBack updates a real loopback service to
// a version that doubles latency, then to one that answers wrong bodies:
// each time the verdict is fail, the host's rollback runs, and the report
// says what failed, with the numbers, and what the rollback did.
func TestValidationAgainstBaselineRollsBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		breaks func(s *service)
		failed string
	}{
		{"2x latency", func(s *service) { s.slow.Store(true) }, "latency"},
		{"wrong body", func(s *service) { s.corrupt.Store(true) }, "routes answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService(t)
			latency, err := validate.NewMetricComparison("latency",
				validate.SourceFunc(func(ctx context.Context) ([]float64, error) { return svc.latencies(ctx, 60) }),
				validate.MetricOptions{Unit: "ms"})
			require.NoError(t, err)
			probe, err := validate.NewHTTPProbe("routes answer", svc.srv.URL, validate.HTTPProbeOptions{BodyContains: "2 routes"})
			require.NoError(t, err)

			dev := sim.New(hal.Vector{hal.CPU: 2})
			o, err := updraft.New([]updraft.Function{
				{Name: "forward", Criticality: updraft.Critical, Demand: hal.Vector{hal.CPU: 1}},
			}, dev, updraft.Options{Profiler: profile.Static{}, Store: snapshot.NewMemStore(), Checks: []validate.Check{probe, latency}})
			require.NoError(t, err)

			rolledBack := false
			report, err := o.PrepareForUpdate(context.Background(), updraft.UpdateFuncs{
				ApplyFunc: func(context.Context) error { tt.breaks(svc); return nil },
				RollbackFunc: func(context.Context) error {
					svc.slow.Store(false)
					svc.corrupt.Store(false)
					rolledBack = true
					return nil
				},
			})
			require.Error(t, err)
			assert.Equal(t, updraft.RolledBack, report.Outcome, report.String())
			assert.True(t, rolledBack)
			assert.ErrorContains(t, err, fmt.Sprintf("check %q fail", tt.failed))
			outcome, ran := report.Ran(updraft.PhaseRollback)
			assert.True(t, ran)
			assert.Equal(t, updraft.OK, outcome, "the report says the rollback ran and succeeded")

			require.NotNil(t, report.Validation)
			for _, res := range report.Validation.Results {
				if res.Check == tt.failed {
					assert.Equal(t, validate.Fail, res.Verdict)
					assert.NotEmpty(t, res.Evidence, "the numbers behind the verdict")
				}
			}
			assert.True(t, strings.Contains(report.String(), tt.failed))
			t.Log(report)
			assert.Empty(t, dev.Allocations())
		})
	}
}
