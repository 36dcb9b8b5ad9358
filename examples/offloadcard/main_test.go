package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/updraft-dev/updraft"
)

// TestRun runs the example end to end and checks the story it tells: a
// plan, the card configured by it, a critical burst accepted, a
// non-critical one refused by the card, and a clean card after undo.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"card capacity: nic.flow=4096 nic.queue=16",
		"firewall   nic.flow=1100 nic.queue=5",
		"does not fit: dpi",
		"queues: firewall firewall firewall firewall firewall mirror nat",
		"firewall installs 1300 flows (reserved 1100): ok",
		"telemetry installs 801 flows (limit 800): refused by the card",
		"after undo:\n  queues: - - - - - - - - - - - - - - - -\n  flow quotas: none",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestHost runs the whole host: the card measured through its meter, a
// committed and a rolled-back update under the Orchestrator with the plan
// applied to the card for each window, and the card exactly as it began
// afterwards: configuration and every function's usage.
func TestHost(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	h, err := newHost(ctx, &out)
	if err != nil {
		t.Fatalf("newHost: %v", err)
	}
	before := h.state(ctx)

	committed, err := h.update(ctx, "v1", "v2")
	if err != nil || committed.Outcome != updraft.Committed {
		t.Fatalf("first update: outcome %v, error %v\n%s", committed.Outcome, err, out.String())
	}
	if h.window.Queues == nil || cmp.Equal(h.window, before) {
		t.Errorf("the plan was not applied to the card during the first window:\n%s", out.String())
	}
	checkPlanFits(t, committed)
	if d := cmp.Diff(before, h.state(ctx)); d != "" {
		t.Errorf("after the committed update the card differs (-before +after):\n%s", d)
	}

	rolledBack, err := h.update(ctx, "v2", "v3")
	if err != nil || rolledBack.Outcome != updraft.RolledBack {
		t.Fatalf("second update: outcome %v, error %v\n%s", rolledBack.Outcome, err, out.String())
	}
	if h.firmware != "v2" {
		t.Errorf("firmware after the rollback is %s, want v2", h.firmware)
	}
	if d := cmp.Diff(before, h.state(ctx)); d != "" {
		t.Errorf("after both updates the card differs (-before +after):\n%s", d)
	}
}

// checkPlanFits checks the plan of an update: the measured functions are
// sized from the meter (not from a static Demand), dpi from its Demand,
// every quantity in whole card units.
func checkPlanFits(t *testing.T, r *updraft.Report) {
	t.Helper()
	for _, f := range r.Functions {
		static := false
		for _, why := range f.Reasons {
			static = static || strings.Contains(why, "static Demand")
		}
		if static != (f.Function == "dpi") {
			t.Errorf("%s: sized from the static Demand: %v (reasons %q)", f.Function, static, f.Reasons)
		}
	}
	if r.Plan == nil {
		t.Fatal("no plan")
	}
	for _, a := range r.Plan.Allocations {
		for res, q := range a.Guarantee {
			if q != math.Trunc(q) {
				t.Errorf("%s %s=%v is not a whole number", a.Function, res, q)
			}
		}
	}
}
