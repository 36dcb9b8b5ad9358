package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
)

// route is one moved function: its buffer, its target, and the goroutine
// (run) that delivers its invocations in order.
//
// Invariant: every entry with seq <= covered has its effect in the state
// at home or in checkpoint, so a new target needs only checkpoint plus the
// entries after covered.
type route struct {
	l    *Lease
	spec Spec
	j    *journal

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
	next        uint64 // next seq to deliver
	waiters     map[uint64]chan result
	closing     bool
	busy        bool            // a goroutine holds the delivery token
	tried       map[string]bool // targets that failed this function
	since       int             // invocations delivered since the last checkpoint
	gen         string          // generation of the state installed at target (stateful, remote)
	gens        int             // generations made so far

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

// run delivers buffered invocations in order until the route is closing
// and drained. It delivers only when no Invoke caller is delivering
// inline (see deliverInline): busy is the one token that lets a goroutine
// deliver, so deliveries stay one at a time and in order.
func (r *route) run() {
	defer close(r.workerDone)
	for {
		r.mu.Lock()
		for (r.busy || r.next > r.j.last()) && !r.closing {
			r.cond.Wait()
		}
		if r.busy || r.next > r.j.last() {
			if !r.busy {
				r.mu.Unlock()
				return // closing and drained
			}
			r.cond.Wait() // closing, but an inline delivery is under way
			r.mu.Unlock()
			continue
		}
		r.busy = true
		seq, t, gen := r.next, r.target, r.gen
		r.mu.Unlock()
		r.step(seq, t, gen)
		r.release()
	}
}

// deliverInline lets the goroutine of Invoke deliver its own invocation
// when nothing is ahead of it, saving two goroutine hand-offs on the hot
// path. It returns once mine is answered or another goroutine holds the
// token; in the latter case the worker delivers mine later.
func (r *route) deliverInline(mine chan result) {
	for {
		r.mu.Lock()
		if r.busy || r.next > r.j.last() || len(mine) > 0 {
			r.mu.Unlock()
			return
		}
		r.busy = true
		seq, t, gen := r.next, r.target, r.gen
		r.mu.Unlock()
		r.step(seq, t, gen)
		r.release()
	}
}

// release gives up the delivery token and wakes the worker.
func (r *route) release() {
	r.mu.Lock()
	r.busy = false
	r.cond.Broadcast()
	r.mu.Unlock()
}

// step delivers entry seq to t, failing over when t is gone. Called with
// the delivery token held.
func (r *route) step(seq uint64, t Target, gen string) {
	payload, err := r.j.get(seq)
	if err != nil {
		r.finish(seq, nil, err)
		return
	}
	res, err := r.call(r.l.ctx, t, Request{Kind: KindInvoke, Function: r.spec.Function,
		ID: r.invocationID(seq), Payload: payload, Generation: gen, Local: r.spec.Local, State: r.spec.State})
	if targetFailed(err) {
		r.failover(t, err)
		return
	}
	r.finish(seq, res, err)
	r.settle(t, gen, seq)
}

// targetFailed reports whether err means the target can no longer serve
// the function (rather than an answer to give the caller).
func targetFailed(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRejected)
}

// finish hands the answer of seq to its waiter, if it still has one (a
// replayed entry was answered before).
func (r *route) finish(seq uint64, data []byte, err error) {
	r.mu.Lock()
	r.next = seq + 1
	ch := r.waiters[seq]
	delete(r.waiters, seq)
	r.mu.Unlock()
	if ch != nil {
		r.stats.invocations.Add(1)
		r.metrics.invocations.Inc()
		ch <- result{data, err}
	} else {
		r.stats.replayed.Add(1)
		r.metrics.replayed.Inc()
	}
}

// settle advances covered after seq was answered: at once when the state
// is home (or there is none), after a checkpoint every CheckpointEvery
// invocations when it is at the target.
func (r *route) settle(t Target, gen string, seq uint64) {
	r.mu.Lock()
	remote := r.stateRemote
	r.since++
	due := r.since >= r.l.m.opts.CheckpointEvery
	r.mu.Unlock()
	if !remote {
		r.cover(seq, nil)
		return
	}
	if due {
		r.fetchCheckpoint(t, gen, seq)
	}
}

// fetchCheckpoint brings the state home as a checkpoint covering every
// entry up to seq; on failure the function fails over.
func (r *route) fetchCheckpoint(t Target, gen string, seq uint64) {
	data, err := r.call(r.l.ctx, t, Request{Kind: KindGetState, Function: r.spec.Function, ID: r.stateID("get"), Generation: gen})
	if err != nil {
		r.l.m.opts.Logger.Warn("migrate: checkpoint failed", "function", r.spec.Function, "target", t.Info().Name, "err", err)
		if targetFailed(err) {
			r.failover(t, err)
		}
		return
	}
	r.stats.checkpoints.Add(1)
	r.metrics.checkpoints.Inc()
	r.cover(seq, data)
}

func (r *route) cover(seq uint64, checkpoint []byte) {
	r.mu.Lock()
	r.covered = seq
	if checkpoint != nil {
		r.checkpoint = checkpoint
	}
	r.since = 0
	r.mu.Unlock()
	if err := r.j.trim(seq); err != nil {
		r.l.m.opts.Logger.Warn("migrate: trim buffer", "function", r.spec.Function, "err", err)
	}
}

// call makes one request, retrying with exponential backoff while the
// target is unreachable, for up to FailoverAfter.
func (r *route) call(ctx context.Context, t Target, req Request) ([]byte, error) {
	o := &r.l.m.opts
	deadline := time.Now().Add(o.FailoverAfter)
	wait := o.RetryInitial
	for {
		cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
		res, err := t.Call(cctx, req)
		cancel()
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
// the last checkpoint, and delivery resumes at the first entry the
// checkpoint does not cover, so nothing is lost and nothing applied twice.
func (r *route) failover(failed Target, cause error) {
	m := r.l.m
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
	cands, skipped := m.candidates(r.spec, health, nil, nil, nil, tried)
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
			r.switchTo(t, why+"; "+rwhy)
			return
		}
	}
	if len(skipped) > 0 {
		why += "; no other target: " + strings.Join(skipped, "; ")
	}
	if err := r.bringStateHome(r.l.ctx); err != nil {
		m.opts.Logger.Error("migrate: degraded fallback could not import the checkpoint", "function", r.spec.Function, "err", err)
	}
	r.switchTo(NewLocalTarget("home", LocalOptions{}), why+"; running at home in degraded mode")
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
	switch {
	case info.InProcess && remote:
		return r.bringStateHome(r.l.ctx)
	case info.InProcess:
		return nil
	case !remote:
		var buf bytes.Buffer
		if err := r.spec.State.Export(r.l.ctx, &buf); err != nil {
			return fmt.Errorf("export state: %w", err)
		}
		cp = buf.Bytes()
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
	r.mu.Unlock()
	return nil
}

// bringStateHome imports the last checkpoint at home, when the state is
// remote.
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
	r.mu.Lock()
	r.stateRemote = false
	r.mu.Unlock()
	return nil
}

// switchTo routes to t, resuming delivery after covered.
func (r *route) switchTo(t Target, why string) {
	info := t.Info()
	r.mu.Lock()
	r.target, r.info = t, info
	r.next = r.covered + 1
	r.since = 0
	r.placement = Placement{Function: r.spec.Function, Target: info.Name, Region: info.Region, Provider: info.Provider, Reason: why}
	r.mu.Unlock()
	r.l.m.opts.Logger.Warn("migrate: failed over", "function", r.spec.Function, "target", info.Name, "reason", why)
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
	remote, t, gen, covered, last := r.stateRemote, r.target, r.gen, r.covered, r.next-1
	r.mu.Unlock()
	if remote {
		data, err := r.call(ctx, t, Request{Kind: KindGetState, Function: r.spec.Function, ID: r.stateID("get"), Generation: gen})
		if err == nil {
			if err := r.spec.State.Import(ctx, bytes.NewReader(data)); err != nil {
				return fmt.Errorf("migrate: return %q: import state from %s: %w", r.spec.Function, t.Info().Name, err)
			}
			r.mu.Lock()
			r.stateRemote = false
			r.mu.Unlock()
		} else {
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
	for seq := covered + 1; seq <= last; seq++ {
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
	r.mu.Unlock()
	return nil
}
