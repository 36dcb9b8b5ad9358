package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
)

// route is one moved function: its buffer, its target, and the goroutine
// (run) that dispatches its invocations (see deliver.go).
//
// Invariant: every entry with seq <= covered has its effect in the state
// at home or in checkpoint, so a new target needs only checkpoint plus the
// entries after covered.
type route struct {
	l     *Lease
	index int // its directory in the lease's
	spec  Spec
	j     *journal
	// reattached routes were rebuilt from their files by Reattach: no
	// dispatcher, closed to remote invocations, returned by
	// giveBackReattached.
	reattached bool

	workerDone chan struct{} // closed when run returns
	back       chan struct{} // closed once routing is local again
	backOnce   sync.Once

	mu          sync.Mutex
	cond        *sync.Cond // signalled on new entries and on closing; uses mu
	target      Target     // guarded by mu; written by run (failover)
	info        TargetInfo
	placement   Placement
	stateRemote bool   // the authoritative state is at target
	checkpoint  []byte // last state known to cover entries <= covered (when stateRemote)
	covered     uint64
	next        uint64          // next seq to dispatch
	inflight    int             // dispatched deliveries not yet finished
	acked       map[uint64]bool // answered entries after covered
	// inCheckpoint lists entries after covered whose effects checkpoint
	// holds anyway: it was exported from the live state at home, where
	// answers can arrive out of order. A replay onto checkpoint skips them.
	inCheckpoint map[uint64]bool
	action       action // exclusive work due once nothing is in flight
	acting       bool   // a goroutine is doing action
	cause        error  // why a recovery is due
	causeTarget  Target
	waiters      map[uint64]chan result
	closing      bool
	tried        map[string]bool // targets that failed this function
	since        int             // invocations answered since the last checkpoint
	gen          string          // generation of the state installed at target (stateful, remote)
	gens         int             // generations made so far

	stats struct {
		invocations, retries, failovers, replayed, checkpoints atomic.Int64
	}
	metrics routeMetrics
}

type result struct {
	data []byte
	err  error
}

func (r *route) stateID(what string) string {
	return r.l.id + "." + r.spec.Function + "." + what + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// newGeneration names a new installation of the state. Called with mu
// held or before the route is shared.
func (r *route) newGeneration() string {
	r.gens++
	return r.l.id + "." + r.spec.Function + ".g" + strconv.Itoa(r.gens)
}

func (r *route) invocationID(seq uint64) string {
	return r.l.id + "." + r.spec.Function + "." + strconv.FormatUint(seq, 10)
}

// enqueue buffers payload and returns the channel its answer arrives on,
// or nil when the function is on its way home (run it locally). With
// inline set, the caller delivers it itself (deliverInline) and the worker
// is not woken.
func (r *route) enqueue(payload []byte, inline bool) (chan result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return nil, nil
	}
	seq, err := r.j.append(payload)
	if err != nil {
		return nil, err
	}
	ch := make(chan result, 1)
	r.waiters[seq] = ch
	if !inline {
		r.cond.Broadcast()
	}
	return ch, nil
}

// call makes one request, retrying with exponential backoff while the
// target is unreachable, for up to FailoverAfter. A target's Retry-After
// (a *RetryAfterError) lengthens the wait before the next attempt; a wait
// that would pass FailoverAfter ends the retries instead.
func (r *route) call(ctx context.Context, t Target, req Request) ([]byte, error) {
	o := &r.l.m.opts
	deadline := time.Now().Add(o.FailoverAfter)
	wait := o.RetryInitial
	for {
		res, err := r.attempt(ctx, t, req)
		var ra *RetryAfterError
		if errors.As(err, &ra) {
			wait = max(wait, min(ra.After, MaxRetryAfter)) // the target asked; bounded
		}
		if err == nil || !errors.Is(err, ErrUnreachable) || time.Now().Add(wait).After(deadline) {
			return res, err
		}
		r.stats.retries.Add(1)
		r.metrics.retries.Inc()
		if ferr := r.j.flush(); ferr != nil {
			r.l.m.opts.Logger.Warn("migrate: flush buffer", "function", r.spec.Function, "err", ferr)
		}
		if serr := r.l.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("migrate: %s of %q: %w (last error: %w)", req.Kind, req.Function, serr, err)
		}
		wait = min(wait*2, o.RetryMax)
	}
}

// failover moves the function off failed: to the best remaining healthy
// target, or home in degraded mode when none is left. The new target gets
// the last checkpoint and a replay, in order, of the entries after it
// (switchTo), so nothing is lost and nothing applied twice. It returns the
// error of a replay cut short by the new target failing too; the caller
// fails over again. Called by the one goroutine doing the route's action.
func (r *route) failover(failed Target, cause error) error {
	m := r.l.m
	r.mu.Lock()
	wasRemote := r.stateRemote
	r.mu.Unlock()
	name := failed.Info().Name
	r.stats.failovers.Add(1)
	r.metrics.failovers.Inc()
	m.mu.Lock()
	m.dead[name] = cause
	m.mu.Unlock()

	r.mu.Lock()
	r.tried[name] = true
	tried := make(map[string]bool, len(r.tried))
	for k := range r.tried {
		tried[k] = true
	}
	r.mu.Unlock()
	m.opts.Logger.Warn("migrate: target failed", "function", r.spec.Function, "target", name, "err", cause)

	health := m.probeAll(r.l.ctx)
	cands, skipped := m.candidates(r.spec, health, r.l.demandByTarget(r), nil, nil, tried)
	why := fmt.Sprintf("failed over from %s (%v)", name, cause)
	if len(cands) > 0 {
		ranked, rwhy := m.opts.Policy.Rank(r.spec, cands)
		for _, c := range ranked {
			t := m.target(c.Info.Name)
			if err := r.install(t); err != nil {
				m.opts.Logger.Warn("migrate: failover target refused state", "function", r.spec.Function, "target", c.Info.Name, "err", err)
				r.mu.Lock()
				r.tried[c.Info.Name] = true
				r.mu.Unlock()
				skipped = append(skipped, fmt.Sprintf("%s refused the state: %v", c.Info.Name, err))
				continue
			}
			reason := why + "; " + rwhy
			if len(skipped) > 0 {
				reason += "; passed over: " + strings.Join(skipped, "; ")
			}
			if err := r.switchTo(t, reason, wasRemote, c.Info.InProcess); err != nil {
				return err
			}
			return nil
		}
	}
	if len(skipped) > 0 {
		why += "; no other target: " + strings.Join(skipped, "; ")
	}
	imported := true
	if err := r.bringStateHome(r.l.ctx); err != nil {
		imported = false
		m.opts.Logger.Error("migrate: degraded fallback could not import the checkpoint", "function", r.spec.Function, "err", err)
	}
	return r.switchTo(NewLocalTarget("home", LocalOptions{}), why+"; running at home in degraded mode", wasRemote, imported)
}

// install gives t the function's state as of covered.
func (r *route) install(t Target) error {
	if r.spec.State == nil {
		return nil
	}
	r.mu.Lock()
	remote, cp := r.stateRemote, r.checkpoint
	r.mu.Unlock()
	info := t.Info()
	var fromLive map[uint64]bool // entries the live export holds, when exported here
	switch {
	case info.InProcess && remote:
		return r.bringStateHome(r.l.ctx)
	case info.InProcess:
		return nil
	case !remote:
		// Nothing is in flight: the live state holds exactly the answered
		// entries, which may not be contiguous after covered.
		r.mu.Lock()
		answered := maps.Clone(r.acked)
		r.mu.Unlock()
		var buf bytes.Buffer
		if err := r.spec.State.Export(r.l.ctx, &buf); err != nil {
			return fmt.Errorf("export state: %w", err)
		}
		cp, fromLive = buf.Bytes(), answered
	}
	r.mu.Lock()
	gen := r.newGeneration()
	r.mu.Unlock()
	_, err := r.call(r.l.ctx, t, Request{Kind: KindPutState, Function: r.spec.Function, ID: r.stateID("put"), Payload: cp, Generation: gen})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.checkpoint, r.stateRemote, r.gen = cp, true, gen
	if fromLive != nil {
		r.inCheckpoint = fromLive
	}
	r.target, r.info = t, info
	err = r.persistLocked()
	r.mu.Unlock()
	return err
}

// bringStateHome imports the last checkpoint at home, when the state is
// remote. The state still counts as remote (in memory and in route.json)
// until switchTo has replayed the entries after the checkpoint onto it: a
// process that dies before then leaves a route that Reattach brings home
// from the checkpoint and the whole buffer again (or from the target),
// not a home state that lacks answered entries.
func (r *route) bringStateHome(ctx context.Context) error {
	r.mu.Lock()
	remote, cp := r.stateRemote, r.checkpoint
	r.mu.Unlock()
	if !remote || r.spec.State == nil {
		return nil
	}
	if err := r.spec.State.Import(ctx, bytes.NewReader(cp)); err != nil {
		return fmt.Errorf("migrate: function %q: import checkpoint at home: %w", r.spec.Function, err)
	}
	return nil
}

// switchTo routes to t, which already holds the state as of covered, and
// replays the entries after covered that t's state lacks: all of them
// when the state had been remote (it was lost with the old target), only
// the unanswered ones when it was home (the answered ones' effects are
// there already). With home set, the checkpoint was imported at home for
// t (in-process): only once the replay is complete does the state count
// as home, durably.
func (r *route) switchTo(t Target, why string, wasRemote, home bool) error {
	info := t.Info()
	r.mu.Lock()
	r.target, r.info = t, info
	r.since = 0
	r.placement = Placement{Function: r.spec.Function, Target: info.Name, Region: info.Region, Provider: info.Provider, Reason: why}
	from, gen := r.covered+1, r.gen
	if !r.stateRemote || info.InProcess {
		gen = ""
	}
	perr := r.persistLocked()
	r.mu.Unlock()
	if perr != nil {
		r.l.m.opts.Logger.Warn("migrate: persist route", "function", r.spec.Function, "err", perr)
	}
	r.l.m.opts.Logger.Warn("migrate: failed over", "function", r.spec.Function, "target", info.Name, "reason", why)
	if err := r.replaySerial(t, gen, from, !wasRemote); err != nil {
		return err
	}
	if !home {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stateRemote {
		return nil
	}
	r.stateRemote = false
	if err := r.persistLocked(); err != nil {
		// route.json still says remote: keep saying so here too, so that
		// nothing is trimmed and Return brings the state home from the
		// checkpoint and the buffer again.
		r.stateRemote = true
		r.l.m.opts.Logger.Warn("migrate: persist route", "function", r.spec.Function, "err", err)
	}
	return nil
}

// giveBack drains the route and brings the function and its state home.
func (r *route) giveBack(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	r.cond.Broadcast()
	r.mu.Unlock()
	select {
	case <-r.workerDone:
	case <-ctx.Done():
		return fmt.Errorf("migrate: return %q: draining in-flight invocations: %w", r.spec.Function, ctx.Err())
	}
	r.mu.Lock()
	remote, t, gen, covered, last := r.stateRemote, r.target, r.gen, r.covered, r.j.last()
	r.mu.Unlock()
	if remote {
		if reached, err := r.fetchStateHome(ctx, t, gen); reached && err != nil {
			return err
		} else if !reached {
			r.l.m.opts.Logger.Warn("migrate: target gone at return; replaying from checkpoint", "function", r.spec.Function, "err", err)
			if err := r.replayHome(ctx, covered, last); err != nil {
				return err
			}
		}
	}
	var errs error
	if err := r.j.close(); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("migrate: return %q: %w", r.spec.Function, err))
	}
	r.backOnce.Do(func() { close(r.back) })
	return errs
}

// fetchStateHome gets the state from t and imports it at home. reached
// is false when t could not be asked (err says why: the caller falls back
// to the checkpoint); an Import that fails is an error with reached true.
func (r *route) fetchStateHome(ctx context.Context, t Target, gen string) (reached bool, err error) {
	data, err := r.call(ctx, t, Request{Kind: KindGetState, Function: r.spec.Function, ID: r.stateID("get"), Generation: gen})
	if err != nil {
		return false, err
	}
	if err := r.spec.State.Import(ctx, bytes.NewReader(data)); err != nil {
		return true, fmt.Errorf("migrate: return %q: import state from %s: %w", r.spec.Function, t.Info().Name, err)
	}
	r.mu.Lock()
	r.stateRemote = false
	r.mu.Unlock()
	return true, nil
}

// replayHome imports the checkpoint at home and re-runs the buffered
// entries after it with the Local function.
//
// The state counts as home only once the replay is complete, so a Return
// retried after a failure here starts again from the checkpoint.
func (r *route) replayHome(ctx context.Context, covered, last uint64) error {
	r.mu.Lock()
	cp := r.checkpoint
	r.mu.Unlock()
	if err := r.spec.State.Import(ctx, bytes.NewReader(cp)); err != nil {
		return fmt.Errorf("migrate: return %q: import checkpoint at home: %w", r.spec.Function, err)
	}
	r.mu.Lock()
	skip := maps.Clone(r.inCheckpoint)
	r.mu.Unlock()
	for seq := covered + 1; seq <= last; seq++ {
		if skip[seq] {
			continue // its effect is in the checkpoint
		}
		payload, err := r.j.get(seq)
		if err != nil {
			return fmt.Errorf("migrate: return %q: replay: %w", r.spec.Function, err)
		}
		_, _ = r.spec.Local(ctx, payload) // answered before; only the effect matters
		r.stats.replayed.Add(1)
		r.metrics.replayed.Inc()
	}
	r.mu.Lock()
	r.covered, r.stateRemote = last, false
	err := r.persistLocked()
	r.mu.Unlock()
	return err
}
