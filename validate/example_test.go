package validate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/updraft-dev/updraft/validate"
)

// A suite with a host function check and a latency comparison against the
// baseline: the update doubles latency, so the verdict is fail, with the
// numbers.
func Example() {
	ctx := context.Background()
	latency := validate.NewRecorder(0) // the host's middleware calls latency.ObserveDuration per request
	cmp, err := validate.NewMetricComparison("latency", latency, validate.MetricOptions{Unit: "ms"})
	if err != nil {
		panic(err)
	}
	suite, err := validate.New([]validate.Check{
		validate.Func("route lookup", func(ctx context.Context) error { return nil }),
		cmp,
	}, validate.Options{})
	if err != nil {
		panic(err)
	}

	for i := range 100 { // traffic before the update
		latency.Observe(2 + float64(i%10)/10)
	}
	if err := suite.RecordBaseline(ctx); err != nil {
		panic(err)
	}
	for i := range 100 { // traffic after an update that doubled latency
		latency.Observe(4 + float64(i%10)/5)
	}
	report, err := suite.Validate(ctx)
	fmt.Println("verdict:", report.Verdict, "error:", err)
	for _, r := range report.Failed() {
		fmt.Println(r.Check+":", r.Evidence[1])
	}
	// Output:
	// verdict: fail error: <nil>
	// latency: median 2.45ms → 4.9ms (+100.0%, tolerance +10%)
}

// The Orchestrator's use: a fail verdict means roll back; Report.Err says
// what failed, every failure included.
func ExampleReport_Err() {
	suite, _ := validate.New([]validate.Check{
		validate.Func("sessions", func(context.Context) error { return errors.New("session table empty") }),
		validate.Func("routes", func(context.Context) error { return nil }),
	}, validate.Options{})
	report, err := suite.Validate(context.Background())
	if err != nil {
		panic(err) // validation could not run
	}
	if report.Verdict == validate.Fail {
		fmt.Println("roll back:", errors.Is(report.Err(), validate.ErrCheckFailed))
		fmt.Println(report.Failed()[0].Err)
	}
	// Output:
	// roll back: true
	// validate: function returned: session table empty
}

// Without checks, a suite refuses to call an update validated unless the
// host opts in.
func ExampleNew_noChecks() {
	suite, _ := validate.New(nil, validate.Options{})
	_, err := suite.Validate(context.Background())
	fmt.Println(err)

	suite, _ = validate.New(nil, validate.Options{AllowNoChecks: true})
	report, err := suite.Validate(context.Background())
	fmt.Println(report.Verdict, err)
	// Output:
	// validate: no checks configured
	// pass <nil>
}

func ExampleNewHTTPProbe() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	probe, err := validate.NewHTTPProbe("health", srv.URL, validate.HTTPProbeOptions{BodyContains: `"ok"`})
	if err != nil {
		panic(err)
	}
	fmt.Println(probe.Run(context.Background()).Verdict)
	// Output: pass
}

func ExampleNewSmoke() {
	smoke, err := validate.NewSmoke("session lifecycle",
		validate.Step{Name: "create", Run: func(context.Context) error { return nil }},
		validate.Step{Name: "forward", Run: func(context.Context) error { return errors.New("no route to 10.1.0.0/16") }},
		validate.Step{Name: "teardown", Run: func(context.Context) error { return nil }},
	)
	if err != nil {
		panic(err)
	}
	r := smoke.Run(context.Background())
	fmt.Println(r.Verdict, r.Score)
	fmt.Println(r.Evidence[2])
	// Output:
	// fail 0.3333333333333333
	// step 3 "teardown": not run
}
