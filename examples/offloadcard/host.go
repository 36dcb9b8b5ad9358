package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/updraft-dev/updraft"
	"github.com/updraft-dev/updraft/examples/offloadcard/card"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/profile"
	"github.com/updraft-dev/updraft/snapshot"
	"github.com/updraft-dev/updraft/validate"
)

// functions are the host's functions. Their demand is in the card's units:
// measured through the card's meter for the four that run today, a static
// Demand for dpi, which is new and has never been measured.
var functions = []updraft.Function{
	{Name: "firewall", Criticality: updraft.Critical, EntryPoint: true},
	{Name: "nat", Criticality: updraft.Critical},
	{Name: "telemetry", Criticality: updraft.NonCritical},
	{Name: "mirror", Criticality: updraft.NonCritical},
	{Name: "dpi", Criticality: updraft.NonCritical,
		Demand: hal.Vector{card.Queue: 6, card.Flow: 1500}},
}

// measured are the functions the meter is read for.
var measured = []string{"firewall", "nat", "telemetry", "mirror"}

// steady is how the running data plane has configured the card before
// any update: what the card must be again after every update.
var steady = []hal.Allocation{
	{Function: "firewall", Guarantee: hal.Vector{card.Queue: 4, card.Flow: 1000}, Limit: hal.Vector{card.Flow: 2000}},
	{Function: "nat", Guarantee: hal.Vector{card.Queue: 2, card.Flow: 700}, Limit: hal.Vector{card.Flow: 1200}},
	{Function: "telemetry", Guarantee: hal.Vector{card.Queue: 2, card.Flow: 400}, Limit: hal.Vector{card.Flow: 800}},
	{Function: "mirror", Guarantee: hal.Vector{card.Queue: 1, card.Flow: 200}, Limit: hal.Vector{card.Flow: 400}},
}

// traffic is, per measured function, the flow entries it holds at sample
// k: a base and a daily-like ripple.
func traffic(function string, k int) int {
	base := map[string]int{"firewall": 700, "nat": 450, "telemetry": 200, "mirror": 80}[function]
	return base + (k*37)%(base/5+1)
}

// cardState is everything of the card's configuration and traffic that an
// update must leave as it found it.
type cardState struct {
	Queues []string
	Quotas map[string]card.FlowQuota
	Usage  map[string]hal.Vector
}

// host is the application: the card, the profiler fed by the card's meter,
// the Orchestrator, and the card's firmware version, which the updates
// change.
type host struct {
	out  io.Writer
	dev  hal.Device
	nic  *card.Card
	prof *profile.Analyzer
	orch *updraft.Orchestrator

	mu       sync.Mutex
	now      time.Time // the host's clock: samples are ten seconds apart
	firmware string
	window   cardState // the card while the update window was open
}

func (h *host) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// newHost opens the card, configures it as the running data plane has it,
// measures the functions for ten minutes of (simulated) traffic and builds
// the Orchestrator.
func newHost(ctx context.Context, out io.Writer) (*host, error) {
	dev, err := hal.Open("offloadcard", config)
	if err != nil {
		return nil, err
	}
	h := &host{out: out, dev: dev, nic: dev.(*card.Card), now: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC), firmware: "v1"}
	if _, err := dev.Apply(ctx, steady); err != nil {
		return nil, fmt.Errorf("steady configuration: %w", err)
	}

	// The card's meter (hal.Meter) measures what each function holds,
	// in the card's units; a profile.Collector turns it into samples.
	meter, ok := dev.(hal.Meter)
	if !ok {
		return nil, errors.New("the card driver offers no meter")
	}
	collector := profile.CollectorFunc(func(ctx context.Context) ([]profile.Sample, error) {
		var samples []profile.Sample
		for _, f := range measured {
			u, err := meter.Usage(ctx, f)
			if err != nil {
				return nil, err
			}
			samples = append(samples, profile.Sample{Function: f, Time: h.clock(), Interval: 10 * time.Second, Usage: u})
		}
		return samples, nil
	})
	h.prof, err = profile.New(profile.Options{Collectors: []profile.Collector{collector}, Clock: h.clock})
	if err != nil {
		return nil, err
	}
	for k := range 60 {
		for _, f := range measured {
			if err := h.setFlows(f, traffic(f, k)); err != nil {
				return nil, err
			}
		}
		if err := h.prof.Sample(ctx); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.now = h.now.Add(10 * time.Second)
		h.mu.Unlock()
	}

	// The planner must hand out whole queues and flow entries: the card
	// says so through hal.Units. (Once the root's default planner reads
	// hal.UnitsOf(device) itself, Partitioner can be left nil.)
	planner, err := partition.New(partition.Options{Units: hal.UnitsOf(dev)})
	if err != nil {
		return nil, err
	}
	h.orch, err = updraft.New(functions, dev, updraft.Options{
		Profiler:    h.prof,
		Partitioner: planner,
		Store:       snapshot.NewMemStore(), // the journal; a FileStore off the card in production
		Checks: []validate.Check{validate.Func("firewall forwards", func(ctx context.Context) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.firmware == "v3" {
				return errors.New("firmware v3 drops the firewall's packets")
			}
			return nil
		})},
		OnEvent: func(e updraft.Event) {
			if e.Phase == updraft.PhaseUpdate && e.Err == nil && h.window.Queues == nil {
				h.window = h.state(context.Background())
			}
		},
		Clock: h.clock,
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// setFlows brings function's installed flow entries to n.
func (h *host) setFlows(function string, n int) error {
	u, err := h.nic.Usage(context.Background(), function)
	if err != nil {
		return err
	}
	switch have := int(u[card.Flow]); {
	case n > have:
		return h.nic.InstallFlows(function, n-have)
	case n < have:
		h.nic.RemoveFlows(function, have-n)
	}
	return nil
}

// state reads the card's configuration and every function's usage.
func (h *host) state(ctx context.Context) cardState {
	s := cardState{Queues: h.nic.QueueOwners(), Quotas: h.nic.FlowQuotas(), Usage: map[string]hal.Vector{}}
	for _, f := range functions {
		u, err := h.nic.Usage(ctx, f.Name)
		if err != nil {
			u = hal.Vector{"error": 1}
		}
		s.Usage[f.Name] = u
	}
	return s
}

// firmwareUpdate loads firmware to, and back to from on rollback.
func (h *host) firmwareUpdate(from, to string) updraft.UpdateFuncs {
	set := func(v string) func(context.Context) error {
		return func(context.Context) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.firmware = v
			return nil
		}
	}
	return updraft.UpdateFuncs{ApplyFunc: set(to), RollbackFunc: set(from)}
}

// update runs one update and prints what happened to the card.
func (h *host) update(ctx context.Context, from, to string) (*updraft.Report, error) {
	h.window = cardState{}
	report, err := h.orch.PrepareForUpdate(ctx, h.firmwareUpdate(from, to))
	if report == nil {
		return nil, err
	}
	fmt.Fprintf(h.out, "\nupdate %s -> %s: %s", from, to, report.Outcome)
	if err != nil {
		fmt.Fprintf(h.out, " (%v)", err)
	}
	fmt.Fprintf(h.out, "\n  phases: %v\n", report.PhaseNames())
	if report.Plan != nil {
		for _, a := range report.Plan.Allocations {
			fmt.Fprintf(h.out, "  plan %-9s guarantee %s\n", a.Function, a.Guarantee)
		}
		for _, m := range report.Plan.DoesNotFit {
			fmt.Fprintf(h.out, "  plan %-9s does not fit: %s\n", m.Function, m.Reason)
		}
	}
	for _, d := range report.Degraded {
		fmt.Fprintf(h.out, "  %s was %s during the window (left out of the plan)\n", d.Function, d.Mode)
	}
	if h.window.Queues != nil {
		fmt.Fprintf(h.out, "  card during the window: queues %s\n", strings.Join(h.window.Queues, " "))
	}
	h.mu.Lock()
	fmt.Fprintf(h.out, "  firmware now %s\n", h.firmware)
	h.mu.Unlock()
	return report, nil
}

// run prints the card, runs a committed and a rolled-back update, and
// fails unless the card ends exactly as it began.
func (h *host) run(ctx context.Context) error {
	before := h.state(ctx)
	fmt.Fprintf(h.out, "card before: queues %s\n", strings.Join(before.Queues, " "))
	if _, err := h.update(ctx, "v1", "v2"); err != nil {
		return err
	}
	if _, err := h.update(ctx, "v2", "v3"); err != nil {
		return err
	}
	after := h.state(ctx)
	fmt.Fprintf(h.out, "card after:  queues %s\n", strings.Join(after.Queues, " "))
	return nil
}
