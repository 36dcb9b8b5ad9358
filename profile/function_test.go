package profile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/updraft-dev/updraft/profile"
)

func TestCriticalityString(t *testing.T) {
	require.Equal(t, "auto", profile.Auto.String())
	require.Equal(t, "critical", profile.Critical.String())
	require.Equal(t, "non-critical", profile.NonCritical.String())
	require.Equal(t, "criticality(9)", profile.Criticality(9).String())
}

func TestForecastRejectsBadFunctions(t *testing.T) {
	an, err := profile.New(profile.Options{})
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		functions []profile.Function
		sentinel  error
		want      string
	}{
		{"empty name", []profile.Function{{Name: "a"}, {Name: ""}}, profile.ErrBadFunction, "function #1 has an empty name"},
		{"spaces", []profile.Function{{Name: " a"}}, profile.ErrBadFunction, `function " a"`},
		{"duplicate", []profile.Function{{Name: "a"}, {Name: "a"}}, profile.ErrDuplicateFunction, `function "a" is listed twice`},
		{"unknown dependency", []profile.Function{{Name: "a", DependsOn: []string{"ghost"}}}, profile.ErrUnknownDependency, `function "a" depends on "ghost"`},
		{"self cycle", []profile.Function{{Name: "a", DependsOn: []string{"a"}}}, profile.ErrDependencyCycle, `function "a": a -> a`},
		{"cycle", []profile.Function{
			{Name: "routes", DependsOn: []string{"fib"}},
			{Name: "fib", DependsOn: []string{"arp"}},
			{Name: "arp", DependsOn: []string{"routes"}},
		}, profile.ErrDependencyCycle, `function "routes": routes -> fib -> arp -> routes`},
		{"criticality", []profile.Function{{Name: "a", Criticality: 5}}, profile.ErrUnknownCriticality, `function "a" has criticality 5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []profile.Profiler{an, profile.Static{}} {
				_, err := p.Forecast(context.Background(), time.Minute, tc.functions)
				require.ErrorIs(t, err, tc.sentinel)
				require.ErrorContains(t, err, tc.want)
			}
		})
	}
	_, err = an.Forecast(context.Background(), 0, nil)
	require.ErrorContains(t, err, "window 0s is not positive")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = an.Forecast(ctx, time.Minute, nil)
	require.True(t, errors.Is(err, context.Canceled))
}

func TestDependenciesOfCriticalAreCritical(t *testing.T) {
	for _, p := range []profile.Profiler{mustNew(t, profile.Options{}), profile.Static{}} {
		fc, err := p.Forecast(context.Background(), time.Minute, []profile.Function{
			{Name: "routes", Criticality: profile.Critical, DependsOn: []string{"fib"}},
			{Name: "fib", Criticality: profile.Auto, DependsOn: []string{"arp"}},
			{Name: "arp", Criticality: profile.NonCritical},
			{Name: "stats", Criticality: profile.NonCritical},
		})
		require.NoError(t, err)
		require.Equal(t, []string{"arp", "fib", "routes", "stats"}, names(fc))
		arp, _ := fc.Lookup("arp")
		fib, _ := fc.Lookup("fib")
		routes, _ := fc.Lookup("routes")
		stats, _ := fc.Lookup("stats")
		require.True(t, routes.Critical)
		require.Contains(t, routes.Reasons, "annotated critical by the host")
		require.True(t, fib.Critical)
		require.Contains(t, fib.Reasons, `critical because "routes" (critical) depends on it`)
		require.True(t, arp.Critical)
		require.Contains(t, arp.Reasons, `critical because "fib" (critical) depends on it, overriding the host's non-critical annotation`)
		require.False(t, stats.Critical)
		require.Equal(t, []string{"annotated non-critical by the host"}, stats.Reasons)
	}
}

func names(fc profile.Forecast) []string {
	var out []string
	for _, f := range fc.Functions {
		out = append(out, f.Function)
	}
	return out
}

func mustNew(t testing.TB, opts profile.Options) *profile.Analyzer {
	t.Helper()
	an, err := profile.New(opts)
	require.NoError(t, err)
	return an
}
