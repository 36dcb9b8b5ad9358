package snapshot

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestMetricsAreRecorded(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	src := &faultySource{data: []byte("0123456789")}
	store := NewMemStore()
	e, err := New(store, map[string]Source{"s": src}, Options{})
	require.NoError(t, err)
	require.NoError(t, reg.Register(e.Collector()))
	m, err := e.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, e.Restore(ctx, m))
	src.failCapture = true
	_, err = e.Snapshot(ctx)
	require.Error(t, err)

	got := gathered(t, reg)
	require.Equal(t, 10.0, got["updraft_snapshot_bytes_total{op=snapshot}"])
	require.Equal(t, 10.0, got["updraft_snapshot_bytes_total{op=restore}"])
	require.Equal(t, 1.0, got["updraft_snapshot_failures_total{op=snapshot}"])
	require.Equal(t, 1.0, got["updraft_snapshot_pause_seconds"], "one cut observed")
	require.Equal(t, 1.0, got["updraft_snapshot_duration_seconds{op=restore}"])
}

// gathered flattens a registry into "name{label=value}" -> value (the
// sample count for histograms).
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// orderSource records the order of pauses, captures and resumes.
type orderSource struct {
	name string
	log  *[]string
}

func (s orderSource) Pause(context.Context) error {
	*s.log = append(*s.log, "pause "+s.name)
	return nil
}
func (s orderSource) Resume() { *s.log = append(*s.log, "resume "+s.name) }
func (s orderSource) Capture(context.Context) (View, error) {
	*s.log = append(*s.log, "capture "+s.name)
	return faultyView{&faultySource{}}, nil
}
func (s orderSource) Restore(context.Context, io.Reader) error { return nil }

func TestCutOrder(t *testing.T) {
	var log []string
	opts := Options{Pause: func(context.Context) (func(), error) {
		log = append(log, "pause host")
		return func() { log = append(log, "resume host") }, nil
	}}
	e, err := New(NewMemStore(), map[string]Source{
		"b": orderSource{"b", &log}, "a": orderSource{"a", &log}, "plain": &faultySource{},
	}, opts)
	require.NoError(t, err)
	_, err = e.Snapshot(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{
		"pause host", "pause a", "pause b", // faultySource "plain" pauses too, silently
		"capture a", "capture b",
		"resume b", "resume a", "resume host",
	}, log)

	// A pause that fails midway resumes only what was paused, in reverse.
	log = nil
	failing := &faultySource{failPause: true}
	e, err = New(NewMemStore(), map[string]Source{"a": orderSource{"a", &log}, "m": failing, "z": orderSource{"z", &log}}, opts)
	require.NoError(t, err)
	_, err = e.Snapshot(context.Background())
	require.True(t, errors.Is(err, ErrCapture))
	require.Equal(t, []string{"pause host", "pause a", "resume a", "resume host"}, log)
}
