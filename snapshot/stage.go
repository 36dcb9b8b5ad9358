package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// errStageAbandoned is what a staging reader returns once Restore gives up
// (verification failed, ctx ended): the staged state is dropped.
var errStageAbandoned = errors.New("snapshot: staging abandoned")

// staging runs the [Stager]s of one Restore while verification reads the
// snapshot: each staged source's verified-so-far chunks go to a goroutine
// calling Stage, so decoding overlaps the single read. Nothing is visible
// until commit, which Restore calls only once the whole snapshot verified.
//
// Stream source i is taken to be the engine's i-th name (the order
// Snapshot writes); Restore checks that against the verified manifest and
// abandons the staging when it does not hold (an older app version).
type staging struct {
	cancel  context.CancelFunc
	byIndex map[uint16]*stagedSource
	order   []*stagedSource // in name order
	aborted atomic.Bool
	closed  bool
}

type stagedSource struct {
	name   string
	chunks chan stagedChunk
	done   chan struct{} // closed when Stage returned
	commit func()
	err    error
}

// stagedChunk is one verified-so-far chunk and the stream buffers it lives
// in, handed back once read.
type stagedChunk struct {
	raw    []byte
	bufs   [2][]byte
	frames *frameStream
	// inStored is set when raw lies in bufs[0], the frame as stored (it
	// was not compressed); otherwise it lies in bufs[1].
	inStored bool
}

// stageChunks is how many chunks may wait for each staged source: memory
// stays bounded whatever the snapshot's size.
const stageChunks = 4

// stage starts a staging for the engine's Stager sources, or returns nil
// when there are none.
func (e *Engine) stage(ctx context.Context, want func(string) bool) *staging {
	var st *staging
	for i, name := range e.names {
		stager, ok := e.sources[name].(Stager)
		if !ok || !want(name) {
			continue
		}
		if st == nil {
			st = &staging{byIndex: map[uint16]*stagedSource{}}
			ctx, st.cancel = context.WithCancel(ctx)
		}
		s := &stagedSource{name: name, chunks: make(chan stagedChunk, stageChunks), done: make(chan struct{})}
		st.byIndex[uint16(i)] = s
		st.order = append(st.order, s)
		go st.run(ctx, s, stager)
	}
	return st
}

func (st *staging) run(ctx context.Context, s *stagedSource, stager Stager) {
	defer close(s.done)
	defer func() {
		if p := recover(); p != nil {
			s.commit, s.err = nil, fmt.Errorf("source %q: stage panicked: %v", s.name, p)
		}
	}()
	commit, err := stager.Stage(ctx, &stageReader{st: st, chunks: s.chunks})
	switch {
	case err != nil:
		s.err = fmt.Errorf("source %q: stage: %w", s.name, err)
	case commit == nil:
		s.err = fmt.Errorf("source %q: stage returned no commit function", s.name)
	default:
		s.commit = commit
	}
}

// feed hands f to its staged source, if it has one, and reports whether it
// did. The frame's buffers are taken from the stream.
func (st *staging) feed(f *frame, frames *frameStream) bool {
	if st == nil {
		return false
	}
	s, ok := st.byIndex[f.source]
	if !ok {
		return false
	}
	c := stagedChunk{raw: f.raw, bufs: frames.lend(), frames: frames, inStored: rawInStored(f)}
	select {
	case s.chunks <- c:
	case <-s.done: // Stage returned early: the rest is dropped
		frames.giveBack(c.bufs)
	}
	return true
}

// staged reports whether stream source i is staged.
func (st *staging) staged(i int) bool {
	if st == nil {
		return false
	}
	_, ok := st.byIndex[uint16(i)]
	return ok
}

// matches reports whether the verified manifest stores the sources in the
// order the staging assumed.
func (st *staging) matches(names []string, m Manifest, upgrade bool) bool {
	if upgrade || len(m.Sources) != len(names) {
		return false
	}
	for i, s := range m.Sources {
		if s.Name != names[i] {
			return false
		}
	}
	return true
}

// finish ends every staged source's stream and waits for Stage to return;
// it returns the Stage errors. Nothing is committed.
func (st *staging) finish() error {
	st.closeAll()
	var errs []error
	for _, s := range st.order {
		<-s.done
		if s.err != nil {
			errs = append(errs, s.err)
		}
	}
	return errors.Join(errs...)
}

// abandon drops every staged state: no source changes. It is safe to call
// more than once, and after finish.
func (st *staging) abandon() {
	if st == nil {
		return
	}
	st.aborted.Store(true)
	st.cancel()
	st.closeAll()
	for _, s := range st.order {
		<-s.done
		s.commit = nil
	}
}

func (st *staging) closeAll() {
	if st.closed {
		return
	}
	st.closed = true
	for _, s := range st.order {
		close(s.chunks)
	}
}

// commitAll makes every staged state visible, in name order. It is called
// after finish returned nil.
func (st *staging) commitAll() error {
	var errs []error
	for _, s := range st.order {
		if err := callCommit(s.name, s.commit); err != nil {
			errs = append(errs, err)
		}
		s.commit = nil
	}
	st.cancel()
	return errors.Join(errs...)
}

func callCommit(name string, commit func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("source %q: commit panicked: %v", name, p)
		}
	}()
	commit()
	return nil
}

// stageReader is the io.Reader a Stager reads: the source's raw bytes as
// verification reads them.
type stageReader struct {
	st     *staging
	chunks chan stagedChunk
	cur    stagedChunk
	rest   []byte
}

func (r *stageReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.cur.frames != nil {
			r.cur.frames.giveBack(r.cur.bufs)
			r.cur = stagedChunk{}
		}
		c, ok := <-r.chunks
		if !ok {
			if r.st.aborted.Load() {
				return 0, errStageAbandoned
			}
			return 0, io.EOF
		}
		r.cur, r.rest = c, c.raw
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// nextChunk returns the next chunk whole, and with it the buffer it lives
// in: the caller owns it from then on (the other buffer goes back to the
// stream). It returns io.EOF after the last chunk. Do not mix it with Read.
func (r *stageReader) nextChunk() ([]byte, error) {
	c, ok := <-r.chunks
	if !ok {
		if r.st.aborted.Load() {
			return nil, errStageAbandoned
		}
		return nil, io.EOF
	}
	c.frames.giveBack(othersThanRaw(c.bufs, c.inStored))
	return c.raw, nil
}

// stagesAll reports whether all n stream sources are staged.
func (st *staging) stagesAll(n int) bool {
	return st != nil && len(st.byIndex) == n
}
