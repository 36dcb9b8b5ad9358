package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/updraft-dev/updraft/hal"
)

// Lease routes the invocations of moved functions to their targets until
// [Lease.Return]. Leases come from [Mover.Migrate]; the zero value is not
// usable. Invoke is what callers use while the update runs; every method
// is safe for concurrent use with every other. Invocations that arrive
// while Return is under way wait for it, then run at home.
//
// Each function has one dispatcher goroutine, owned by the lease and
// stopped by Return, that delivers its buffered invocations, up to
// Options.MaxInFlight at once; after an outage or a failover the buffer is
// replayed one invocation at a time, in order.
type Lease struct {
	id  string
	m   *Mover
	dir string

	// ctx bounds the delivery goroutines; cancelled once all is returned.
	ctx    context.Context
	cancel context.CancelFunc

	// routes and order are written only by Migrate, before the lease is
	// handed out; read-only afterwards.
	routes map[string]*route
	order  []string

	retMu    sync.Mutex // serialises Return and Detach
	returned bool       // guarded by retMu
	detached atomic.Bool

	overflow atomic.Int64
}

// LeaseStats counts what a lease did.
type LeaseStats struct {
	Invocations int64 // delivered and answered (not counting replays)
	Retries     int64 // attempts repeated after an unreachable target
	Failovers   int64 // moves to another target (or home) after a target failed
	Replayed    int64 // invocations re-delivered from the buffer after a failover
	Checkpoints int64 // state checkpoints fetched home
	Overflow    int64 // invocations refused with ErrBufferFull
	Buffered    int64 // invocations in the on-disk buffer now (not yet covered by a checkpoint)
}

func newLease(m *Mover, id string) (*Lease, error) {
	if id == "" {
		id = newLeaseID()
	}
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	dir := leaseDir(m.opts.BufferDir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("migrate: lease %s already exists in %s (Reattach finds it)", id, m.opts.BufferDir)
		}
		return nil, fmt.Errorf("migrate: lease buffer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Lease{id: id, m: m, dir: dir, ctx: ctx, cancel: cancel, routes: map[string]*route{}}, nil
}

// ID returns the lease's identifier; idempotency keys start with it.
func (l *Lease) ID() string { return l.id }

// Invoke runs function with payload: at its target while it is moved, at
// home (its Local) once the lease is returned. While moved, the invocation
// is first written to the function's on-disk buffer, then delivered at
// least once, with retries and an idempotency key, so its effect happens
// exactly once; if the target dies it is replayed on the next one.
//
// If ctx ends before the answer, Invoke returns ctx's error but the
// invocation stays buffered and is still delivered once. Errors: a
// *FunctionError for the function's own error, ErrUnknownFunction,
// ErrPayloadTooLarge, ErrBufferFull (counted in LeaseStats.Overflow).
func (l *Lease) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	r := l.routes[function]
	if r == nil {
		return nil, fmt.Errorf("%w: %q is not part of lease %s", ErrUnknownFunction, function, l.id)
	}
	if l.detached.Load() {
		return nil, fmt.Errorf("migrate: invoke %q: %w: lease %s is served by another process", function, ErrDetached, l.id)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("migrate: invoke %q: %w", function, err)
	}
	if n := int64(len(payload)); n > l.m.opts.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: invoke %q: payload is %d bytes, limit %d", ErrPayloadTooLarge, function, n, l.m.opts.MaxPayloadBytes)
	}
	// A caller nobody can cancel may as well deliver its own invocation
	// (and any ahead of it) instead of waking the worker: two goroutine
	// hand-offs fewer on the hot path. A cancellable caller must be free to
	// leave, so the worker delivers for it.
	inline := ctx.Done() == nil
	ch, err := r.enqueue(payload, inline)
	if err != nil {
		if errors.Is(err, ErrBufferFull) {
			l.overflow.Add(1)
			r.metrics.overflow.Inc()
			l.m.opts.Logger.Warn("migrate: invocation refused, buffer full", "function", function, "err", err)
		}
		return nil, fmt.Errorf("migrate: invoke %q: %w", function, err)
	}
	if ch == nil { // routed home
		select {
		case <-r.back:
		case <-ctx.Done():
			return nil, fmt.Errorf("migrate: invoke %q: waiting for its return home: %w", function, ctx.Err())
		}
		return r.spec.Local(ctx, payload)
	}
	if inline {
		r.deliverInline(ch)
	}
	select {
	case res := <-ch:
		return res.data, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("migrate: invoke %q: %w (the invocation stays buffered and will still run once)", function, ctx.Err())
	}
}

// Placements returns where each moved function runs now, in the order
// the specs were given; a failover shows as the new target with a reason
// naming the failed one.
func (l *Lease) Placements() []Placement {
	out := make([]Placement, 0, len(l.order))
	for _, fn := range l.order {
		r := l.routes[fn]
		r.mu.Lock()
		out = append(out, r.placement)
		r.mu.Unlock()
	}
	return out
}

// Stats returns the lease's counters so far.
func (l *Lease) Stats() LeaseStats {
	s := LeaseStats{Overflow: l.overflow.Load()}
	for _, r := range l.routes {
		s.Invocations += r.stats.invocations.Load()
		s.Retries += r.stats.retries.Load()
		s.Failovers += r.stats.failovers.Load()
		s.Replayed += r.stats.replayed.Load()
		s.Checkpoints += r.stats.checkpoints.Load()
		_, n := r.j.buffered()
		s.Buffered += int64(n)
	}
	return s
}

// Return brings every function home: it stops taking new invocations for
// the targets (later ones wait, then run locally), drains those in flight,
// fetches each function's state from its target and imports it with
// State.Import — falling back to the last checkpoint plus a local replay of
// the buffer when the target is gone — and routes locally again.
//
// Return is idempotent: once it has succeeded, later calls return nil;
// after a failure (ctx ended, an Import failed) a later call retries what
// is left. Errors of several functions are collected.
func (l *Lease) Return(ctx context.Context) error {
	l.retMu.Lock()
	defer l.retMu.Unlock()
	if l.returned {
		return nil
	}
	if l.detached.Load() {
		return fmt.Errorf("migrate: return lease %s: %w (Reattach it where it is served)", l.id, ErrDetached)
	}
	var mu sync.Mutex
	var errs error
	var wg sync.WaitGroup
	for _, fn := range l.order {
		r := l.routes[fn]
		wg.Go(func() {
			giveBack := r.giveBack
			if r.reattached {
				giveBack = r.giveBackReattached
			}
			if err := giveBack(ctx); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if errs != nil {
		return errs
	}
	l.returned = true
	l.cancel()
	if err := os.RemoveAll(l.dir); err != nil {
		l.m.opts.Logger.Warn("migrate: remove lease buffer", "dir", l.dir, "err", err)
	}
	return nil
}

// move places spec on t: its state is exported and sent, then a delivery
// goroutine starts. Called by Migrate only.
func (l *Lease) move(ctx context.Context, spec Spec, t Target, why string) error {
	index := len(l.order)
	j, err := openJournal(l.dir+"/"+strconv.Itoa(index), l.m.opts.BufferBytes)
	if err != nil {
		return err
	}
	r := &route{l: l, index: index, spec: spec, j: j, waiters: map[uint64]chan result{}, tried: map[string]bool{}, acked: map[uint64]bool{},
		workerDone: make(chan struct{}), back: make(chan struct{}), next: 1, metrics: l.m.metrics.forFunction(spec.Function)}
	r.cond = sync.NewCond(&r.mu)
	info := t.Info()
	if spec.State != nil && !info.InProcess {
		var buf bytes.Buffer
		if err := spec.State.Export(ctx, &buf); err != nil {
			j.close()
			return fmt.Errorf("migrate: function %q: export state before the move: %w", spec.Function, err)
		}
		gen := r.newGeneration()
		if _, err := r.call(ctx, t, Request{Kind: KindPutState, Function: spec.Function, ID: r.stateID("put"), Payload: buf.Bytes(), Generation: gen}); err != nil {
			j.close()
			return fmt.Errorf("migrate: function %q: send state to %s: %w", spec.Function, info.Name, err)
		}
		r.checkpoint, r.stateRemote, r.gen = buf.Bytes(), true, gen
	}
	r.target, r.info = t, info
	r.placement = Placement{Function: spec.Function, Target: info.Name, Region: info.Region, Provider: info.Provider, Reason: why}
	if err := r.persist(); err != nil {
		j.close()
		return err
	}
	l.routes[spec.Function] = r
	l.order = append(l.order, spec.Function)
	if err := l.persistManifest(); err != nil {
		return err
	}
	l.m.opts.Logger.Info("migrate: moved", "function", spec.Function, "target", info.Name, "region", info.Region, "reason", why)
	go r.run()
	return nil
}

// demandByTarget sums the demands of the lease's functions, other than
// except, by the target each runs on now, for placing except elsewhere.
func (l *Lease) demandByTarget(except *route) map[string]hal.Vector {
	used := map[string]hal.Vector{}
	for _, r := range l.routes {
		if r == except {
			continue
		}
		r.mu.Lock()
		name := r.info.Name
		r.mu.Unlock()
		used[name] = used[name].Add(r.spec.Demand)
	}
	return used
}

// sleep waits d or until the lease's goroutines are stopped.
func (l *Lease) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
