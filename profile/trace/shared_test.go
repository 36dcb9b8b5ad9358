package trace_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/profile/trace"
)

// sharedTraces returns the directory of the shared public traces (the one
// holding bitbrains-rnd-2013-7/ and alibaba-2018/): $UPDRAFT_TRACES if
// set, else ../shared/traces beside the module root (found by walking up
// from this package to go.mod). They are not copied into the repository,
// as their README asks. When they are missing the test fails under CI
// (CI non-empty) and is skipped elsewhere, saying where it looked.
func sharedTraces(t testing.TB) string {
	t.Helper()
	dir, how := os.Getenv("UPDRAFT_TRACES"), "$UPDRAFT_TRACES"
	if dir == "" {
		root, err := moduleRoot()
		require.NoError(t, err)
		dir, how = filepath.Join(root, "..", "shared", "traces"), "../shared/traces beside the module root "+root
	}
	if _, err := os.Stat(filepath.Join(dir, "bitbrains-rnd-2013-7")); err != nil {
		msg := "shared traces not found at " + dir + " (" + how + "): " + err.Error() +
			"; set UPDRAFT_TRACES to the directory holding bitbrains-rnd-2013-7/ and alibaba-2018/, or place it at ../shared/traces beside the module root"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// family reads every file of one trace family.
func family(t *testing.T, dir, name string) []trace.Series {
	t.Helper()
	files, err := trace.FindFiles(filepath.Join(dir, name))
	require.NoError(t, err)
	series, st, err := trace.ReadFiles(files)
	require.NoError(t, err)
	require.Zero(t, st.Broken, "%s: %v", name, st.Problems)
	return series
}

// aimStatus is what benchmarks/profile/SUMMARY.md states about the aim per
// trace family and resource — the model's violations no higher than the
// VPA recommender's at its defaults (violations), with at most 60% of its
// gross slack (slack) — and the line examples/forecast prints for it, with
// both methods' figures: where the aim is met and by how much it falls
// short where it is not. The aim is met in full on Alibaba memory only.
// The test fails when a verdict or a figure changes, so this table and
// SUMMARY.md change together.
//
// anchor is the line examples/forecast prints for the aim's anchor
// ([trace.KnownMeanCurve]): the slack a reservation told each hour's mean
// use in advance needs at the VPA recommender's violation rate. On
// Bitbrains CPU it needs more than the aim allows, so the aim there asks
// more than knowing the coming hour's mean would give.
var aimStatus = map[string]map[hal.Resource]struct {
	violations, slack bool
	line, anchor      string
}{
	"bitbrains-rnd-2013-7": {
		hal.CPU: {false, false, "cpu: slack 39.0% vs 58.7% (66% of it), violations 1.48% vs 1.20%: NOT met: more violations and more than 60% of the slack",
			"cpu: knowing each window's mean in advance, with each series' best margin in hindsight, needs 40.4% slack at the reference's 1.20% violations: more than the aim allows (35.2%)"},
		hal.Memory: {false, false, "memory: slack 265.0% vs 298.2% (89% of it), violations 0.08% vs 0.04%: NOT met: more violations and more than 60% of the slack",
			"memory: knowing each window's mean in advance, with each series' best margin in hindsight, needs 169.3% slack at the reference's 0.04% violations: within what the aim allows (178.9%)"},
	},
	"alibaba-2018": {
		hal.CPU: {true, false, "cpu: slack 75.8% vs 62.6% (121% of it), violations 0.73% vs 2.91%: NOT met: more than 60% of the slack",
			"cpu: knowing each window's mean in advance, with each series' best margin in hindsight, needs 33.0% slack at the reference's 2.91% violations: within what the aim allows (37.6%)"},
		hal.Memory: {true, true, "memory: slack 11.4% vs 26.2% (44% of it), violations 0.00% vs 0.00%: met",
			"memory: knowing each window's mean in advance, with each series' best margin in hindsight, needs 13.3% slack at the reference's 0.00% violations: within what the aim allows (15.7%)"},
	},
}

// TestAimPerResourceOnSharedTraces replays every shared trace through the
// methods examples/forecast compares, with its defaults, and checks the
// aim per family and resource against aimStatus. It also holds the
// weaker claims SUMMARY.md makes: the model's memory violations are no
// higher than the moving-window rule's, and wherever the model violates
// more than the VPA recommender it reserves less gross slack.
func TestAimPerResourceOnSharedTraces(t *testing.T) {
	dir := sharedTraces(t)
	for name, want := range aimStatus {
		t.Run(name, func(t *testing.T) {
			methods := trace.StandardMethods(trace.ModelOptions{}, trace.DefaultVPAConfig(), trace.DefaultWindowConfig())
			series := family(t, dir, name)
			ev, err := trace.Evaluate(context.Background(), series, methods, trace.ReplayOptions{})
			require.NoError(t, err)
			model, vpa, window := ev.Method(trace.MethodModel), ev.Method(trace.MethodVPA), ev.Method(trace.MethodWindow)
			aims := ev.Aim(model, vpa)
			require.Len(t, aims, len(want))
			for _, a := range aims {
				t.Logf("%s %s", name, a)
				w := want[a.Resource]
				require.Equal(t, w.violations, a.ViolationsMet(), "%s %s: violations part of the aim", name, a.Resource)
				require.Equal(t, w.slack, a.SlackMet(), "%s %s: slack part of the aim", name, a.Resource)
				require.Equal(t, w.line, a.String(), "%s %s: figures", name, a.Resource)
				if !a.ViolationsMet() {
					require.Less(t, a.Model.Slack(), a.Reference.Slack(), "%s %s: more violations than VPA must come with less slack", name, a.Resource)
				}
			}
			for _, a := range trace.Anchors(series, aims, trace.ReplayOptions{}) {
				t.Logf("%s anchor %s", name, a)
				require.Equal(t, want[a.Aim.Resource].anchor, a.String(), "%s %s: anchor", name, a.Aim.Resource)
			}
			m, w := ev.Total(model)[hal.Memory], ev.Total(window)[hal.Memory]
			require.LessOrEqual(t, m.ViolationRate(), w.ViolationRate(), "%s: memory violations above p95-2h×1.2's", name)
		})
	}
}

// TestQuantilesAreOrderedOnSharedTraces replays a few real traces: every
// file reads without a broken row, and the model's P99 is exceeded less
// often and reserves more than its P95, its P50 the reverse.
func TestQuantilesAreOrderedOnSharedTraces(t *testing.T) {
	dir := sharedTraces(t)
	var series []trace.Series
	for _, f := range []string{"bitbrains-rnd-2013-7/3.csv.gz", "bitbrains-rnd-2013-7/14.csv.gz", "alibaba-2018/machine_usage.csv.gz"} {
		s, st, err := trace.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Zero(t, st.Broken, "%s: %v", f, st.Problems)
		series = append(series, s...)
	}
	var methods []trace.Method
	for _, q := range []float64{0.5, 0.95, 0.99} {
		methods = append(methods, trace.ModelMethod("", trace.ModelOptions{Quantile: q}))
	}
	ev, err := trace.Evaluate(context.Background(), series, methods, trace.ReplayOptions{})
	require.NoError(t, err)
	p50, p95, p99 := ev.Total(0), ev.Total(1), ev.Total(2)
	require.Greater(t, p95[hal.CPU].Points, 10000)
	for _, r := range []hal.Resource{hal.CPU, hal.Memory} {
		t.Logf("%s: p50 %.1f%%/%.2f%% p95 %.1f%%/%.2f%% p99 %.1f%%/%.2f%%", r, 100*p50[r].Slack(), 100*p50[r].ViolationRate(),
			100*p95[r].Slack(), 100*p95[r].ViolationRate(), 100*p99[r].Slack(), 100*p99[r].ViolationRate())
		require.Less(t, p95[r].ViolationRate(), p50[r].ViolationRate(), r)
		require.LessOrEqual(t, p99[r].ViolationRate(), p95[r].ViolationRate(), r)
		require.Greater(t, p95[r].Slack(), p50[r].Slack(), r)
		require.GreaterOrEqual(t, p99[r].Slack(), p95[r].Slack(), r)
	}
}
