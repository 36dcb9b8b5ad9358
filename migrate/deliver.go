package migrate

import (
	"context"
	"errors"
	"fmt"
)

// Delivery. Each route runs one dispatcher goroutine (run) that starts a
// delivery goroutine per buffered invocation, up to Options.MaxInFlight at
// once; an Invoke caller that nobody can cancel delivers inline instead
// (deliverInline), saving the goroutine hand-offs. A delivery is a single
// attempt. What cannot run beside deliveries — fetching a checkpoint,
// recovering from a failed target — is an action: once one is due, nothing
// new is dispatched, and when the last delivery in flight has finished,
// one goroutine does the action alone. Recovery retries and replays one
// entry at a time, in buffer order, before the window opens again.

// action is exclusive work due on a route.
type action uint8

const (
	noAction action = iota
	doCheckpoint
	doRecover
)

// canDispatch reports whether a new delivery may start. Called with mu held.
func (r *route) canDispatch() bool {
	return r.action == noAction && !r.acting && r.inflight < r.window() && r.next <= r.j.last()
}

// window is how many deliveries may be in flight at once: the Mover's
// Options.MaxInFlight, or less where the target asks for less
// ([InFlightLimiter]). Called with mu held.
func (r *route) window() int {
	w := r.l.m.opts.MaxInFlight
	if l, ok := r.target.(InFlightLimiter); ok {
		if n := l.MaxInFlight(); n > 0 && n < w {
			w = n
		}
	}
	return w
}

// actionDue reports whether the due action may run now. Called with mu held.
func (r *route) actionDue() bool {
	return r.action != noAction && !r.acting && r.inflight == 0
}

// drained reports whether nothing is buffered, in flight or due. Called
// with mu held.
func (r *route) drained() bool {
	return r.next > r.j.last() && r.inflight == 0 && r.action == noAction && !r.acting
}

// dispatch claims the next entry for delivery. Called with mu held and
// canDispatch true.
func (r *route) dispatch() (uint64, Target, string) {
	seq := r.next
	r.next++
	r.inflight++
	return seq, r.target, r.gen
}

// run is the route's dispatcher: it starts deliveries, does due actions,
// and returns once the route is closing and drained.
func (r *route) run() {
	defer close(r.workerDone)
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		switch {
		case r.actionDue():
			r.acting = true
			r.mu.Unlock()
			r.act()
			r.mu.Lock()
			r.acting = false
			r.cond.Broadcast()
		case r.canDispatch():
			seq, t, gen := r.dispatch()
			go r.deliver(seq, t, gen)
		case r.closing && r.drained():
			return
		default:
			r.cond.Wait()
		}
	}
}

// deliverInline lets the goroutine of an uncancellable Invoke deliver
// entries itself, in dispatch order, until its own is answered or the
// window is full (the dispatcher then delivers it).
func (r *route) deliverInline(mine chan result) {
	for {
		r.mu.Lock()
		if len(mine) > 0 || !r.canDispatch() {
			r.mu.Unlock()
			return
		}
		seq, t, gen := r.dispatch()
		r.mu.Unlock()
		r.deliver(seq, t, gen)
	}
}

// deliver makes one attempt at entry seq. A target failure makes a
// recovery due instead of answering.
func (r *route) deliver(seq uint64, t Target, gen string) {
	payload, err := r.j.get(seq)
	var res []byte
	if err == nil {
		// The entry is made durable while the target runs it: the caller
		// is answered only once both are done, so an acknowledged
		// invocation is on disk (and, with its effect, at the target).
		synced := make(chan error, 1)
		if r.l.m.opts.NoSync {
			synced <- nil
		} else {
			go func() { synced <- r.j.syncTo(seq) }()
		}
		res, err = r.attempt(r.l.ctx, t, r.invokeRequest(seq, gen, payload))
		if serr := <-synced; serr != nil && !targetFailed(err) {
			res, err = nil, serr
		}
	}
	if !targetFailed(err) {
		r.answer(seq, res, err)
	} else if errors.Is(err, ErrUnreachable) {
		r.stats.retries.Add(1) // recovery repeats it
		r.metrics.retries.Inc()
	}
	// Only now is the delivery over: the dispatcher may find the route
	// drained, and Return close the buffer, once inflight drops.
	r.mu.Lock()
	r.inflight--
	if targetFailed(err) && r.action != doRecover {
		r.action, r.cause, r.causeTarget = doRecover, err, t
	}
	// Wake the dispatcher only when this frees it to do something: a full
	// window has room again, or an action (or Return) waits for quiet.
	if r.inflight == r.window()-1 || r.action != noAction || r.closing {
		r.cond.Broadcast()
	}
	r.mu.Unlock()
}

func (r *route) invokeRequest(seq uint64, gen string, payload []byte) Request {
	return Request{Kind: KindInvoke, Function: r.spec.Function, ID: r.invocationID(seq), Payload: payload,
		Generation: gen, Local: r.spec.Local, State: r.spec.State, NoAnswer: r.spec.NoAnswer, AnswerTypes: r.spec.AnswerTypes}
}

// answer records that seq was answered: hands the answer to its waiter (a
// replayed entry has none), and advances covered — at once over answered
// entries when the state is home (or there is none), by a checkpoint every
// CheckpointEvery answers when it is at the target.
func (r *route) answer(seq uint64, data []byte, err error) {
	r.mu.Lock()
	ch := r.waiters[seq]
	delete(r.waiters, seq)
	r.acked[seq] = true
	trimTo := uint64(0)
	if !r.stateRemote {
		for r.acked[r.covered+1] {
			delete(r.acked, r.covered+1)
			r.covered++
			trimTo = r.covered
		}
	} else if r.since++; r.since >= r.l.m.opts.CheckpointEvery && r.action == noAction {
		r.action = doCheckpoint
	}
	r.mu.Unlock()
	if ch != nil {
		r.stats.invocations.Add(1)
		r.metrics.invocations.Inc()
		ch <- result{data, err}
	} else {
		r.stats.replayed.Add(1)
		r.metrics.replayed.Inc()
	}
	if trimTo > 0 {
		r.trim(trimTo)
	}
}

func (r *route) trim(seq uint64) {
	if err := r.j.trim(seq); err != nil {
		r.l.m.opts.Logger.Warn("migrate: trim buffer", "function", r.spec.Function, "err", err)
	}
}

// act does the due action, with nothing in flight.
func (r *route) act() {
	r.mu.Lock()
	a, cause, t, gen := r.action, r.cause, r.target, r.gen
	if a == doRecover {
		t = r.causeTarget
	}
	r.mu.Unlock()
	if a == doCheckpoint {
		cause = r.checkpointNow(t, gen)
		if cause == nil {
			return
		}
	}
	r.recover(t, gen, cause)
	r.mu.Lock()
	r.action, r.cause, r.causeTarget = noAction, nil, nil
	r.mu.Unlock()
}

// checkpointNow fetches the state from t; with nothing in flight, it
// covers every entry dispatched so far. It returns a target failure for
// recover to handle; other failures (a state over the limit) are logged
// and the buffer keeps growing toward its bound.
func (r *route) checkpointNow(t Target, gen string) error {
	data, err := r.call(r.l.ctx, t, Request{Kind: KindGetState, Function: r.spec.Function, ID: r.stateID("get"), Generation: gen})
	if err != nil {
		r.l.m.opts.Logger.Warn("migrate: checkpoint failed", "function", r.spec.Function, "target", t.Info().Name, "err", err)
		if targetFailed(err) {
			return err
		}
		r.mu.Lock()
		r.action, r.since = noAction, 0
		r.mu.Unlock()
		return nil
	}
	r.stats.checkpoints.Add(1)
	r.metrics.checkpoints.Inc()
	r.mu.Lock()
	covered := r.next - 1
	for s := r.covered + 1; s <= covered; s++ {
		delete(r.acked, s)
	}
	r.covered, r.checkpoint, r.since, r.action = covered, data, 0, noAction
	r.inCheckpoint = nil
	err = r.persistLocked()
	r.mu.Unlock()
	if err != nil {
		// The buffer is not trimmed: the durable checkpoint is the older one.
		r.l.m.opts.Logger.Warn("migrate: persist checkpoint", "function", r.spec.Function, "err", err)
		return nil
	}
	r.trim(covered)
	return nil
}

// recover handles a failed target t. If it was unreachable, the entries
// not yet answered are retried on it one at a time, in order, with
// backoff, for up to FailoverAfter; if that fails too (or t refused, or
// another function already found t dead), the function fails over, as
// often as it takes.
func (r *route) recover(t Target, gen string, cause error) {
	if errors.Is(cause, ErrUnreachable) && !r.l.m.condemned(t) {
		r.mu.Lock()
		from := r.covered + 1
		r.mu.Unlock()
		if cause = r.replaySerial(t, gen, from, true); cause == nil {
			return
		}
	}
	for cause != nil {
		r.mu.Lock()
		failed := r.target
		r.mu.Unlock()
		cause = r.failover(failed, cause)
	}
}

// replaySerial delivers the entries from seq from, one at a time, in
// order, with retries, up to the newest buffered when the target first
// answers (everything that waited through the outage). With
// onlyUnanswered it skips entries already answered (their effects are in
// the state t holds); otherwise it replays them too (their effects were
// lost), without answering their callers twice. It returns the target
// failure that cut it short, if any.
func (r *route) replaySerial(t Target, gen string, from uint64, onlyUnanswered bool) error {
	last, answered := r.j.last(), false
	r.mu.Lock()
	if !onlyUnanswered {
		for seq := from; seq <= last; seq++ {
			if !r.inCheckpoint[seq] {
				delete(r.acked, seq) // answered, but their effects must be redone
			}
		}
	}
	r.mu.Unlock()
	for seq := from; seq <= last; seq++ {
		r.mu.Lock()
		skip := r.acked[seq]
		r.mu.Unlock()
		if skip {
			continue
		}
		payload, err := r.j.get(seq)
		if err == nil && !r.l.m.opts.NoSync {
			err = r.j.syncTo(seq)
		}
		var res []byte
		if err == nil {
			res, err = r.call(r.l.ctx, t, r.invokeRequest(seq, gen, payload))
			if targetFailed(err) {
				return err
			}
		}
		r.answer(seq, res, err)
		if !answered {
			answered, last = true, max(last, r.j.last())
		}
	}
	r.mu.Lock()
	r.next = max(r.next, last+1)
	r.mu.Unlock()
	return nil
}

// attempt makes one call, bounded by CallTimeout. An attempt that runs
// out of time has an unknown outcome, so it counts as unreachable (to be
// retried under the same idempotency key), not as an answer — unless the
// target accepted it (ErrNoAnswer): that counts as applied.
func (r *route) attempt(ctx context.Context, t Target, req Request) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, r.l.m.opts.CallTimeout)
	defer cancel()
	res, err := t.Call(cctx, req)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrNoAnswer) {
		err = fmt.Errorf("%w: %s of %q on %s: no answer within %v: %w", ErrUnreachable, req.Kind, req.Function, t.Info().Name, r.l.m.opts.CallTimeout, err)
	}
	return res, err
}

// targetFailed reports whether err means the target can no longer serve
// the function (rather than an answer to give the caller).
func targetFailed(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRejected)
}
