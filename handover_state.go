package updraft

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/updraft-dev/updraft/snapshot"
)

// deltaView and deltaSource are the delta capture of package snapshot
// (snapshot.DeltaView and snapshot.DeltaSource): a view that writes only
// what changed since an earlier view of the same source, and a source that
// applies such a delta onto its current state.
type deltaView interface {
	WriteDeltaTo(w io.Writer, base snapshot.View) (int64, error)
}

type deltaSource interface {
	ApplyDelta(ctx context.Context, r io.Reader) error
}

// cut is one consistent capture of every state source: every Pauser is
// paused (in name order), every source captured, then all resumed.
type cut struct {
	names []string
	views map[string]snapshot.View
	pause time.Duration
}

func takeCut(ctx context.Context, sources map[string]snapshot.Source) (*cut, error) {
	c := &cut{views: map[string]snapshot.View{}}
	for name := range sources {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	var resumes []func()
	start := time.Now()
	err := guard("state source", func() error {
		defer func() {
			for i := len(resumes) - 1; i >= 0; i-- {
				resumes[i]()
			}
		}()
		for _, name := range c.names {
			if p, ok := sources[name].(snapshot.Pauser); ok {
				if err := p.Pause(ctx); err != nil {
					return fmt.Errorf("pause %q: %w", name, err)
				}
				resumes = append(resumes, p.Resume)
			}
		}
		for _, name := range c.names {
			v, err := sources[name].Capture(ctx)
			if err != nil {
				return fmt.Errorf("capture %q: %w", name, err)
			}
			c.views[name] = v
		}
		return nil
	})
	c.pause = time.Since(start)
	if err != nil {
		c.release()
		return nil, fmt.Errorf("updraft: hand-over: %w", err)
	}
	return c, nil
}

// release lets the views go.
func (c *cut) release() {
	if c == nil {
		return
	}
	for _, v := range c.views {
		if cl, ok := v.(io.Closer); ok {
			_ = cl.Close()
		}
	}
	c.views = nil
}

// sendCut writes every view of c: as a delta from base where the view can
// write one and the receiver can apply it (deltas names the receiver's
// sources that can), whole otherwise.
func sendCut(w *wire, c, base *cut, deltas []string) (sent int64, err error) {
	for _, name := range c.names {
		v := c.views[name]
		mode := "full"
		var bv snapshot.View
		if base != nil {
			bv = base.views[name]
		}
		dv, canWrite := v.(deltaView)
		if bv != nil && canWrite && slices.Contains(deltas, name) {
			mode = "delta"
		}
		sw, err := w.openStream(streamHeader{Source: name, Mode: mode})
		if err != nil {
			return sent, err
		}
		err = guard("state View", func() error {
			if mode == "delta" {
				_, err := dv.WriteDeltaTo(sw, bv)
				return err
			}
			_, err := v.WriteTo(sw)
			return err
		})
		if err != nil {
			return sent, fmt.Errorf("updraft: hand-over: write %s state of %q: %w", mode, name, err)
		}
		if err := sw.Close(); err != nil {
			return sent, err
		}
		sent += sw.n
	}
	return sent, nil
}

// sendExports writes the remote state of each named function (migrate.State
// of functions that run locally now).
func (o *Orchestrator) sendExports(ctx context.Context, w *wire, names []string) error {
	for _, name := range names {
		st := o.byName[name].Remote.State
		sw, err := w.openStream(streamHeader{Source: name, Mode: "export"})
		if err != nil {
			return err
		}
		if err := guard("migrate.State.Export", func() error { return st.Export(ctx, sw) }); err != nil {
			return fmt.Errorf("updraft: hand-over: export the state of %q: %w", name, err)
		}
		if err := sw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// localRemoteStates names the functions with a Remote State that run
// locally now (not migrated): their state moves with the process.
func (o *Orchestrator) localRemoteStates() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var names []string
	for _, f := range o.functions {
		if f.Remote != nil && f.Remote.State != nil && !o.moved[f.Name] {
			names = append(names, f.Name)
		}
	}
	return names
}

// deltaSources names the state sources that can apply a delta.
func (o *Orchestrator) deltaSources() []string {
	var names []string
	for _, f := range o.functions {
		if _, ok := f.State.(deltaSource); ok && f.State != nil {
			names = append(names, f.Name)
		}
	}
	return names
}

// applyStream hands one received stream to its source.
func (o *Orchestrator) applyStream(ctx context.Context, h *streamHeader, r *streamReader) error {
	f := o.byName[h.Source]
	err := func() error {
		if f == nil {
			return fmt.Errorf("no function %q here", h.Source)
		}
		switch h.Mode {
		case "full":
			if f.State == nil {
				return fmt.Errorf("function %q has no State here", h.Source)
			}
			return guard("state source Restore", func() error { return f.State.Restore(ctx, r) })
		case "delta":
			ds, ok := f.State.(deltaSource)
			if !ok {
				return fmt.Errorf("the State of %q cannot apply a delta here", h.Source)
			}
			return guard("state source ApplyDelta", func() error { return ds.ApplyDelta(ctx, r) })
		case "export":
			if f.Remote == nil || f.Remote.State == nil {
				return fmt.Errorf("function %q has no Remote State here", h.Source)
			}
			return guard("migrate.State.Import", func() error { return f.Remote.State.Import(ctx, r) })
		}
		return fmt.Errorf("unknown stream mode %q", h.Mode)
	}()
	if derr := r.drain(); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("updraft: hand-over: state of %q (%s): %w", h.Source, h.Mode, err)
	}
	return nil
}

// receiveUntil applies every stream until a message arrives, and returns it.
func (o *Orchestrator) receiveUntil(ctx context.Context, w *wire) (*handoverMsg, error) {
	for {
		m, h, err := w.next()
		if err != nil {
			return nil, err
		}
		if h != nil {
			if err := o.applyStream(ctx, h, w.readStream()); err != nil {
				return nil, err
			}
			continue
		}
		if m.Type == msgError {
			return nil, fmt.Errorf("updraft: hand-over: the other process gave up: %s", m.Err)
		}
		return m, nil
	}
}
