package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// hosted is one function served by a Handler or a LocalTarget: the
// function, its state, and the answers already given, by idempotency key.
type hosted struct {
	name string
	f    Func
	st   State

	// run is held shared by invocations and exclusively by state
	// transfers, so an export is a consistent cut between invocations.
	run sync.RWMutex

	dedup *dedup
	puts  *dedup    // put-state ids already applied; never reset, so a replayed put cannot roll the state back
	log   *dedupLog // durable record of both (a Handler's DedupPath); nil: memory only

	genMu sync.Mutex
	gen   string // generation of the state last imported; guarded by genMu
}

// checkGeneration refuses a request made for state of another generation.
func (h *hosted) checkGeneration(want string) error {
	if want == "" {
		return nil
	}
	h.genMu.Lock()
	have := h.gen
	h.genMu.Unlock()
	if have != want {
		if have == "" {
			have = "none (restarted, or never given state)"
		}
		return fmt.Errorf("%w: function %q: request is for state generation %q, this handler holds %s",
			ErrStateMismatch, h.name, want, have)
	}
	return nil
}

// outcome is the answer to one request, kept for its duplicates.
type outcome struct {
	at time.Time
	// Guarded by the dedup's mu; see finish and await.
	finished bool
	result   []byte
	fnErr    error         // the function's own error, if any
	done     chan struct{} // made only for a duplicate that must wait; closed once finished
}

// invoke runs the function once per id: a duplicate waits for the first
// run and gets its answer.
func (h *hosted) invoke(ctx context.Context, id string, payload []byte, now time.Time) ([]byte, error) {
	o, first := h.dedup.claim(id, now)
	if !first {
		select {
		case <-h.dedup.await(o):
			return o.result, o.fnErr
		case <-ctx.Done():
			return nil, fmt.Errorf("migrate: function %q: waiting for the first run of %q: %w", h.name, id, ctx.Err())
		}
	}
	// The first run completes even if its caller hangs up: its answer is
	// what every retry of this id will get, so it must not be an abort.
	h.run.RLock()
	res, err := h.f(context.WithoutCancel(ctx), payload)
	h.run.RUnlock()
	if h.log != nil {
		rec := dedupRecord{kind: dedupResult, at: now, function: h.name, id: id, data: res}
		if err != nil {
			rec.kind, rec.data = dedupFnErr, []byte(err.Error())
		}
		if lerr := h.log.append(rec); lerr != nil {
			// The effect happened; answering it lets the caller go on, and
			// the memory still deduplicates until a restart.
			return res, errors.Join(err, lerr)
		}
	}
	h.dedup.finish(o, res, err)
	return res, err
}

// restore seeds the dedup sets with a record of an earlier process.
func (h *hosted) restore(r dedupRecord) {
	o := &outcome{at: r.at, finished: true, result: r.data}
	d := h.dedup
	switch r.kind {
	case dedupFnErr:
		o.result, o.fnErr = nil, errors.New(string(r.data))
	case dedupPut:
		o.result, d = nil, h.puts
	}
	d.mu.Lock()
	d.byID[r.id] = o
	d.order = append(d.order, r.id)
	d.mu.Unlock()
}

// putState replaces the state; the answers kept for earlier ids no longer
// describe it, so they are forgotten.
//
// A put whose id was seen before is not applied again: within the time
// window, a captured put replayed by someone else would otherwise roll the
// state back.
func (h *hosted) putState(ctx context.Context, id, gen string, data []byte, now time.Time) error {
	o, first := h.puts.claim(id, now)
	if !first {
		<-h.puts.await(o)
		return o.fnErr
	}
	err := h.importState(ctx, gen, data)
	if err == nil && h.log != nil {
		err = h.log.append(dedupRecord{kind: dedupPut, at: now, function: h.name, id: id})
	}
	h.puts.finish(o, nil, err)
	return err
}

func (h *hosted) importState(ctx context.Context, gen string, data []byte) error {
	if h.st == nil && len(data) > 0 {
		return fmt.Errorf("migrate: function %q has no State registered here, but %d bytes of state were sent", h.name, len(data))
	}
	h.run.Lock()
	defer h.run.Unlock()
	if h.st != nil {
		if err := h.st.Import(ctx, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("migrate: function %q: import state: %w", h.name, err)
		}
	}
	h.dedup.reset()
	h.genMu.Lock()
	h.gen = gen
	h.genMu.Unlock()
	return nil
}

// getState exports a consistent cut of the state.
func (h *hosted) getState(ctx context.Context, limit int64) ([]byte, error) {
	if h.st == nil {
		return nil, nil
	}
	h.run.Lock()
	defer h.run.Unlock()
	var buf bytes.Buffer
	if err := h.st.Export(ctx, &limitedWriter{w: &buf, left: limit}); err != nil {
		return nil, fmt.Errorf("migrate: function %q: export state: %w", h.name, err)
	}
	return buf.Bytes(), nil
}

// dedup remembers answers by id for a retention window, up to a count.
type dedup struct {
	mu     sync.Mutex
	byID   map[string]*outcome
	order  []string // ids in claim order, oldest first, from head on
	head   int
	max    int
	retain time.Duration
}

func newDedup(max int, retain time.Duration) *dedup {
	return &dedup{byID: make(map[string]*outcome), max: max, retain: retain}
}

func (d *dedup) claim(id string, now time.Time) (*outcome, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.byID[id]; ok && now.Sub(o.at) <= d.retain {
		return o, false
	}
	d.evict(now)
	o := &outcome{at: now}
	d.byID[id] = o
	d.order = append(d.order, id)
	return o, true
}

// finish records the answer of o's first run and wakes the duplicates
// waiting for it.
func (d *dedup) finish(o *outcome, result []byte, fnErr error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o.finished, o.result, o.fnErr = true, result, fnErr
	if o.done != nil {
		close(o.done)
	}
}

// await returns a channel closed once o's first run has finished; after
// it is closed, o's result and fnErr may be read. The channel is made
// only here: most ids are never seen twice.
func (d *dedup) await(o *outcome) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o.done == nil {
		o.done = make(chan struct{})
		if o.finished {
			close(o.done)
		}
	}
	return o.done
}

// evict drops answers older than retain, and the oldest beyond max.
// Called with mu held.
func (d *dedup) evict(now time.Time) {
	for d.head < len(d.order) {
		o := d.byID[d.order[d.head]]
		if o != nil && len(d.order)-d.head < d.max && now.Sub(o.at) <= d.retain {
			break
		}
		delete(d.byID, d.order[d.head])
		d.order[d.head] = ""
		d.head++
	}
	if d.head > 1024 && d.head > len(d.order)/2 {
		d.order = append([]string(nil), d.order[d.head:]...)
		d.head = 0
	}
}

func (d *dedup) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.byID)
	d.order, d.head = nil, 0
}

// limitedWriter fails once more than left bytes are written.
type limitedWriter struct {
	w    *bytes.Buffer
	left int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("%w: state exceeds the limit", ErrPayloadTooLarge)
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}
