package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// A lease outlives its process. Its directory under Options.BufferDir,
// "updraft-lease-<id>", holds:
//
//   - lease.json: the lease's id and its functions, in move order,
//     rewritten durably (temporary file, fsync, rename, fsync of the
//     directory) after each function is moved;
//   - per function, a directory "<n>" with route.json — the target it runs
//     on, the generation of the state installed there, whether the state
//     is remote, the last checkpoint of the state and the last entry it
//     covers — rewritten durably whenever one of them changes, before the
//     buffer is trimmed; and the invocation buffer, whose every entry is
//     fsynced while it is being delivered (the fsync and the call run
//     side by side), before its caller is answered.
//
// So an acknowledged invocation is on disk, and its effect is in the
// target's state (or, if the target died, in the checkpoint plus the
// buffer). One that was not acknowledged took effect at most once. [Mover.Reattach] in a new
// process finds the lease by id, re-delivers the buffered entries (a
// Handler deduplicates by idempotency key, within its dedup window),
// fetches the state and brings everything home; when the target is gone
// it imports the checkpoint and replays the entries after it at home.

// ErrNotFound is returned (wrapped) by Reattach when nothing of the lease
// remains: it was never made, or it was returned.
var ErrNotFound = errors.New("migrate: lease not found")

type leaseFile struct {
	Version   int      `json:"v"`
	ID        string   `json:"id"`
	Functions []string `json:"functions"`
}

type routeFile struct {
	Version     int    `json:"v"`
	Function    string `json:"function"`
	Target      string `json:"target"`
	Generation  string `json:"generation,omitempty"`
	Generations int    `json:"generations"`
	StateRemote bool   `json:"stateRemote"`
	Covered     uint64 `json:"covered"`
	Checkpoint  []byte `json:"checkpoint,omitempty"`
}

// checkLeaseID accepts ids that name a directory safely.
func checkLeaseID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("migrate: lease id %q must be 1 to 128 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') || i == 0 && c == '.' {
			return fmt.Errorf("migrate: lease id %q has character %q at %d; allowed are [A-Za-z0-9._-], not starting with '.'", id, c, i)
		}
	}
	return nil
}

// persistManifest rewrites lease.json.
func (l *Lease) persistManifest() error {
	b, err := json.Marshal(leaseFile{Version: 1, ID: l.id, Functions: l.order})
	if err != nil {
		return err
	}
	if err := writeFileDurably(filepath.Join(l.dir, "lease.json"), b); err != nil {
		return fmt.Errorf("migrate: lease %s: %w", l.id, err)
	}
	return nil
}

func (r *route) routeDir() string { return filepath.Join(r.l.dir, strconv.Itoa(r.index)) }

// persistLocked rewrites route.json; mu is held.
func (r *route) persistLocked() error {
	target := ""
	if r.target != nil {
		target = r.info.Name
	}
	b, err := json.Marshal(routeFile{Version: 1, Function: r.spec.Function, Target: target, Generation: r.gen, Generations: r.gens,
		StateRemote: r.stateRemote, Covered: r.covered, Checkpoint: r.checkpoint})
	if err != nil {
		return err
	}
	if err := writeFileDurably(filepath.Join(r.routeDir(), "route.json"), b); err != nil {
		return fmt.Errorf("migrate: function %q: %w", r.spec.Function, err)
	}
	return nil
}

func (r *route) persist() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.persistLocked()
}

// Reattach finds lease id, made by Migrate in this process or in one that
// died, over the same BufferDir and targets; specs give the local
// functions and states again (every function of the lease must be among
// them). The lease returned routes every invocation home once Return has
// brought its function back; its Return re-delivers what is buffered,
// fetches the state from the target (or, the target gone, imports the
// last checkpoint and replays the buffer after it at home), and removes
// the lease's files. Nothing of the lease remaining is an error matching
// [ErrNotFound].
func (m *Mover) Reattach(ctx context.Context, id string, specs []Spec) (*Lease, error) {
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	dir := leaseDir(m.opts.BufferDir, id)
	b, err := os.ReadFile(filepath.Join(dir, "lease.json"))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			// A Migrate that died before its first move: nothing moved.
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("migrate: reattach %s: %w", id, err)
			}
		}
		return nil, fmt.Errorf("%w: lease %s in %s", ErrNotFound, id, m.opts.BufferDir)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: reattach %s: %w", id, err)
	}
	var lf leaseFile
	if err := json.Unmarshal(b, &lf); err != nil || lf.Version != 1 || lf.ID != id {
		return nil, fmt.Errorf("migrate: reattach %s: %s is damaged or of another version (%v)", id, filepath.Join(dir, "lease.json"), err)
	}
	bySpec := map[string]Spec{}
	for _, s := range specs {
		bySpec[s.Function] = s
	}
	ctxL, cancel := context.WithCancel(context.Background())
	l := &Lease{id: id, m: m, dir: dir, ctx: ctxL, cancel: cancel, routes: map[string]*route{}}
	for i, fn := range lf.Functions {
		spec, ok := bySpec[fn]
		if !ok {
			cancel()
			return nil, fmt.Errorf("migrate: reattach %s: function %q of the lease is not among the specs", id, fn)
		}
		r, err := l.reopenRoute(i, spec)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("migrate: reattach %s: %w", id, err)
		}
		l.routes[fn] = r
		l.order = append(l.order, fn)
	}
	return l, nil
}

// reopenRoute rebuilds a route from its files, closed to new remote
// invocations: they wait for Return, then run at home.
func (l *Lease) reopenRoute(index int, spec Spec) (*route, error) {
	dir := filepath.Join(l.dir, strconv.Itoa(index))
	b, err := os.ReadFile(filepath.Join(dir, "route.json"))
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", spec.Function, err)
	}
	var rf routeFile
	if err := json.Unmarshal(b, &rf); err != nil || rf.Version != 1 || rf.Function != spec.Function {
		return nil, fmt.Errorf("function %q: route.json is damaged or of another version (%v)", spec.Function, err)
	}
	t := l.m.target(rf.Target)
	if t == nil && rf.Target != "home" {
		return nil, fmt.Errorf("function %q ran on target %q, which this Mover does not have", spec.Function, rf.Target)
	}
	j, err := reopenJournal(dir, l.m.opts.BufferBytes, rf.Covered)
	if err != nil {
		return nil, err
	}
	r := &route{l: l, index: index, spec: spec, j: j, waiters: map[uint64]chan result{}, tried: map[string]bool{}, acked: map[uint64]bool{},
		workerDone: make(chan struct{}), back: make(chan struct{}), next: j.last() + 1, metrics: l.m.metrics.forFunction(spec.Function),
		closing: true, stateRemote: rf.StateRemote, checkpoint: rf.Checkpoint, covered: rf.Covered, gen: rf.Generation, gens: rf.Generations,
		reattached: true}
	r.cond = sync.NewCond(&r.mu)
	close(r.workerDone) // no dispatcher: nothing is sent until Return
	if t != nil {
		r.target, r.info = t, t.Info()
		r.placement = Placement{Function: spec.Function, Target: r.info.Name, Region: r.info.Region, Provider: r.info.Provider,
			Reason: "reattached after a restart"}
	}
	return r, nil
}

// giveBackReattached brings home a function of a reattached lease: the
// buffered entries after the checkpoint are delivered again, in order (a
// target that already ran one answers it from its deduplication), then the
// state comes home; with the target gone, the checkpoint is imported and
// the entries replayed at home.
func (r *route) giveBackReattached(ctx context.Context) error {
	r.mu.Lock()
	t, gen, covered, last := r.target, r.gen, r.covered, r.j.last()
	if !r.stateRemote {
		gen = ""
	}
	r.mu.Unlock()
	var failed error
	if t != nil && !t.Info().InProcess {
		for seq := covered + 1; seq <= last && failed == nil; seq++ {
			payload, err := r.j.get(seq)
			if err != nil {
				return fmt.Errorf("migrate: return %q: %w", r.spec.Function, err)
			}
			if _, err := r.call(ctx, t, r.invokeRequest(seq, gen, payload)); targetFailed(err) {
				failed = err
			}
			r.stats.replayed.Add(1)
		}
		if failed == nil && r.stateRemote && r.spec.State != nil {
			if reached, err := r.fetchStateHome(ctx, t, gen); reached && err != nil {
				return err
			} else if !reached {
				failed = err
			}
		}
	} else {
		failed = errors.New("the function ran at home")
	}
	switch {
	case failed != nil && r.spec.State != nil && r.stateRemote:
		r.l.m.opts.Logger.Warn("migrate: target gone at reattached return; replaying from checkpoint", "function", r.spec.Function, "err", failed)
		if err := r.replayHome(ctx, covered, last); err != nil {
			return err
		}
	case failed != nil && last > covered:
		// A stateless function's effects are its own: whether the target
		// ran the buffered entries cannot be told, and running them here
		// could run them twice.
		r.l.m.opts.Logger.Warn("migrate: target gone at reattached return; buffered invocations of a stateless function not re-run",
			"function", r.spec.Function, "entries", last-covered, "err", failed)
	}
	var errs error
	if err := r.j.close(); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("migrate: return %q: %w", r.spec.Function, err))
	}
	r.backOnce.Do(func() { close(r.back) })
	return errs
}

// ErrDetached is returned (wrapped) by Invoke on a lease that was
// detached: another process serves its functions now.
var ErrDetached = errors.New("migrate: lease detached")

// Detach stops routing the lease's functions in this process without
// bringing them home, so that another process (a new version of this
// one) can take the lease over with Reattach: in-flight deliveries
// finish, every buffered entry and each route's state are made durable,
// and the files stay. Invocations after Detach fail with ErrDetached.
// Detach after Return, or twice, does nothing.
func (l *Lease) Detach(ctx context.Context) error {
	l.retMu.Lock()
	defer l.retMu.Unlock()
	if l.returned || l.detached.Load() {
		return nil
	}
	l.detached.Store(true)
	var errs error
	for _, fn := range l.order {
		r := l.routes[fn]
		r.mu.Lock()
		r.closing = true
		r.cond.Broadcast()
		r.mu.Unlock()
		select {
		case <-r.workerDone:
		case <-ctx.Done():
			return fmt.Errorf("migrate: detach %q: draining in-flight invocations: %w", fn, ctx.Err())
		}
		// route.json is rewritten at every change already; entries
		// delivered were synced, so this syncs only what was never sent.
		if err := r.j.syncTo(r.j.last()); err != nil {
			errs = multierror.Append(errs, err)
		}
		if err := r.j.closeFiles(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	l.cancel()
	return errs
}
