package updraft

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/degrade"
)

// guardedDegrader is the Degrader the Orchestrator calls: it passes every
// call to the host's Degrader (or the default *degrade.Controller) and,
// when that Degrader has a critical guard (a *degrade.Controller does),
// runs the guard for the update window: from the moment a function the
// update reduces is put under an Adaptive throttle (its Degrade policy
// says Adaptive, or Options.AdaptiveDegrade makes every Throttle adaptive)
// until the last such function is back to normal (commit, rollback, abort,
// or a recovered panic: each ends in the restore-service step) or the
// window's deadline passes. While the guard runs, Invoke of a function the
// profile phase judged critical reports its latency to the guard.
type guardedDegrader struct {
	Degrader
	o   *Orchestrator
	ctl guardRunner // nil when the Degrader has no critical guard

	live atomic.Pointer[guardRun] // the guard running now; nil when none

	mu       sync.Mutex      // guards adaptive and starting or stopping live
	adaptive map[string]bool // functions under an Adaptive throttle set through this Degrader
}

// guardRunner is what a Degrader needs for the Orchestrator to run its
// critical guard; *degrade.Controller has it.
type guardRunner interface {
	RunGuard(ctx context.Context) error
	ObserveCritical(latency time.Duration)
	ResetGuard()
	Subscribe(fn func(degrade.Event)) (cancel func())
}

// guardRun is one window's guard.
type guardRun struct {
	critical    map[string]bool // functions whose latency Invoke reports; read-only
	cancel      context.CancelFunc
	done        chan struct{} // closed when RunGuard returned
	unsubscribe func()

	mu       sync.Mutex // guards the fields below
	backoffs int
	lowest   degrade.GuardState // the state after the lowest factor seen
}

// ended reports whether RunGuard has returned (the window's deadline
// passed).
func (run *guardRun) ended() bool {
	select {
	case <-run.done:
		return true
	default:
		return false
	}
}

func newGuardedDegrader(o *Orchestrator, d Degrader) *guardedDegrader {
	g := &guardedDegrader{Degrader: d, o: o, adaptive: map[string]bool{}}
	g.ctl, _ = d.(guardRunner)
	return g
}

// unwrapDegrader returns the Degrader the host gave or New made.
func unwrapDegrader(d Degrader) Degrader {
	if g, ok := d.(*guardedDegrader); ok {
		return g.Degrader
	}
	return d
}

// Set is the Degrader's Set; under Options.AdaptiveDegrade a Throttle
// policy is made Adaptive (its MaxConcurrent, if any, the ceiling). The
// guard starts with the first Adaptive throttle and stops when none is
// left.
func (g *guardedDegrader) Set(function string, p degrade.Policy, reason string, until time.Time) error {
	if g.o.opts.AdaptiveDegrade && p.Mode == degrade.Throttle {
		p.Adaptive = true
	}
	if err := g.Degrader.Set(function, p, reason, until); err != nil {
		return err
	}
	g.track(function, p.Mode == degrade.Throttle && p.Adaptive, until)
	return nil
}

// Clear is the Degrader's Clear; the guard stops with the last Adaptive
// throttle.
func (g *guardedDegrader) Clear(function string) error {
	err := g.Degrader.Clear(function)
	g.track(function, false, time.Time{})
	return err
}

// Acquire is the Degrader's Acquire; while the guard runs, the release of
// a critical function's call reports the call's latency to it (by the
// Orchestrator's clock).
func (g *guardedDegrader) Acquire(function string) (release func(), err error) {
	inner, err := g.Degrader.Acquire(function)
	if err != nil {
		return nil, err
	}
	run := g.live.Load()
	if run == nil || !run.critical[function] {
		return inner, nil
	}
	start := g.o.opts.Clock()
	return func() {
		g.ctl.ObserveCritical(g.o.opts.Clock().Sub(start))
		inner()
	}, nil
}

// track records whether function is under an Adaptive throttle and starts
// or stops the guard accordingly.
func (g *guardedDegrader) track(function string, adaptive bool, until time.Time) {
	if g.ctl == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if adaptive {
		g.adaptive[function] = true
		if run := g.live.Load(); run != nil && run.ended() {
			g.stop() // an earlier window's guard ran out its deadline
		}
		if g.live.Load() == nil {
			g.start(until)
		}
		return
	}
	delete(g.adaptive, function)
	if len(g.adaptive) == 0 && g.live.Load() != nil {
		g.stop()
	}
}

// start runs the guard until until (by the Orchestrator's clock). Caller
// holds mu; it is called from the goroutine running the update.
func (g *guardedDegrader) start(until time.Time) {
	run := &guardRun{critical: g.criticalFunctions(), done: make(chan struct{}), lowest: degrade.GuardState{Factor: 1}}
	var ctx context.Context
	ctx, run.cancel = context.WithTimeout(context.Background(), until.Sub(g.o.opts.Clock()))
	run.unsubscribe = g.ctl.Subscribe(func(ev degrade.Event) {
		if ev.Cause != degrade.CauseGuard || ev.Guard == nil {
			return
		}
		run.mu.Lock()
		if ev.Guard.Factor < run.lowest.Factor {
			run.backoffs++
			run.lowest = *ev.Guard
		}
		run.mu.Unlock()
	})
	g.ctl.ResetGuard() // a factor left low by an earlier window does not carry over
	g.live.Store(run)
	go func() {
		defer close(run.done)
		_ = g.ctl.RunGuard(ctx) // returns when ctx ends: stop, or the deadline
	}()
	g.o.logger.Info("updraft: critical guard started for the update window", "critical", len(run.critical), "until", until)
}

// stop ends the guard, returns it to full service, and notes in the report
// of the update running now what it did. Caller holds mu.
func (g *guardedDegrader) stop() {
	run := g.live.Swap(nil)
	run.cancel()
	<-run.done
	run.unsubscribe()
	g.ctl.ResetGuard()
	run.mu.Lock()
	backoffs, lowest := run.backoffs, run.lowest
	run.mu.Unlock()
	g.o.logger.Info("updraft: critical guard stopped", "backoffs", backoffs, "lowest_factor", lowest.Factor)
	if backoffs > 0 && g.o.current != nil {
		g.o.current.report.Flags = append(g.o.current.report.Flags, fmt.Sprintf(
			"the critical guard tightened the adaptive throttles %d time(s) during the window, to %.3g of their limits at the lowest (%s)",
			backoffs, lowest.Factor, lowest.Why))
	}
}

// criticalFunctions names the functions the running update judged
// critical, or, outside an update (a new process taking a self-update
// over), those annotated Critical. Called from the update's goroutine.
func (g *guardedDegrader) criticalFunctions() map[string]bool {
	critical := map[string]bool{}
	if r := g.o.current; r != nil && len(r.report.Functions) > 0 {
		for _, f := range r.report.Functions {
			if f.Critical {
				critical[f.Function] = true
			}
		}
		return critical
	}
	for _, f := range g.o.functions {
		if f.Criticality == Critical {
			critical[f.Name] = true
		}
	}
	return critical
}
