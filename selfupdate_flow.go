package updraft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/snapshot"
)

// The hand-over, as the old process (O) and the new one (N) see it:
//
//	O: start N with the listeners and the channel     N: hello (its delta-capable sources)
//	O: bulk state, while O serves                     N: restores it, then says so
//	O: drain (gates shut, keep-alives off, in-flight requests finish),
//	   detach the lease, final state as deltas,
//	   go (lease, degraded modes)                     N: applies, reattaches the lease,
//	                                                     degrades, opens its gates: live
//	O: validate N (through the shared address)
//	O: commit: journal, release the lock, commit      N: ack, then Resume finishes the update
//	   (or) rollback                                  N: drains, detaches the lease, sends the
//	                                                     state back as deltas: returned; exits
//	O: applies it, reattaches the lease, serves again
//
// A new process whose old one dies finishes the update with Resume: not
// validated, so it rolls back by handing over, the same way, to the
// previous executable, which then finishes the update with Resume.

// orchestrator returns the Orchestrator passed to Start.
func (s *SelfUpdate) orchestrator() (*Orchestrator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orch == nil {
		return nil, errors.New("updraft: self-update: call Start with the Orchestrator before updating")
	}
	return s.orch, nil
}

// Apply starts the new executable and hands it the data plane: listeners,
// state in bulk and then as a final delta, the lease and the degraded
// modes. When it returns nil the new process serves; the Orchestrator then
// validates it through the shared address.
func (s *SelfUpdate) Apply(ctx context.Context) error {
	o, err := s.orchestrator()
	if err != nil {
		return err
	}
	spec := processSpec{Path: s.opts.Path, Args: s.opts.Args, Env: append(environWithout(os.Environ(), handoverEnv), s.opts.Env...)}
	return s.handTo(ctx, o, spec, false)
}

// handTo starts spec and moves the data plane to it. With resume, the new
// process finishes the update with Resume once it is live (a roll-back to
// the previous executable after the old process died).
func (s *SelfUpdate) handTo(ctx context.Context, o *Orchestrator, spec processSpec, resume bool) (err error) {
	child, err := s.startChild(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.child, s.childLive = child, false
	s.mu.Unlock()
	defer func() {
		if err != nil {
			err = flatten(multiError(err, s.takeBack(context.WithoutCancel(ctx), o)))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = child.wire.Close() })
	defer stop()

	warm := s.startWarming(child.pid())
	hello, err := child.expect(msgHello)
	if err != nil {
		return fmt.Errorf("updraft: self-update: the new process did not start: %w", err)
	}
	warm.again()
	r := o.current
	authoritative := s.keptState()
	var bulk *cut
	var bulkSent, bulkApplied time.Time
	if authoritative {
		bulkStart := time.Now()
		if bulk, err = takeCut(ctx, o.stateSources()); err != nil {
			return err
		}
		defer bulk.release()
		size, err := sendCut(child.wire, bulk, nil, nil)
		if err != nil {
			return fmt.Errorf("updraft: self-update: bulk state: %w", err)
		}
		defer func() {
			if err == nil {
				r.report.Flags = append(r.report.Flags, fmt.Sprintf("self-update: bulk state %d bytes, sent in %v and applied by the new process %v later, while this one served",
					size, bulkSent.Sub(bulkStart).Round(time.Microsecond), bulkApplied.Sub(bulkSent).Round(time.Microsecond)))
			}
		}()
		bulkSent = time.Now()
		// The switch waits until the new process has applied the bulk:
		// otherwise the pause would include the rest of its restore.
		if err := child.wire.send(handoverMsg{Type: msgBulk}); err != nil {
			return err
		}
		if _, err := child.expect(msgRestored); err != nil {
			return fmt.Errorf("updraft: self-update: the new process did not apply the bulk state: %w", err)
		}
		bulkApplied = time.Now()
	}
	if err := warm.end(); err != nil {
		return err
	}
	if warm != nil {
		r.report.Flags = append(r.report.Flags, fmt.Sprintf("self-update: the new process ran at nice %d (this one's %d) while it started and applied the bulk state",
			warm.nice, warm.base))
	}
	o.at("selfupdate:bulk-sent")

	// The switch: from here until the new process is live, nobody serves.
	pauseStart := time.Now()
	if err := s.drain(ctx); err != nil {
		return err
	}
	drained := time.Now()
	o.at("selfupdate:drained")
	lease, err := o.detachLease(ctx)
	if err != nil {
		return err
	}
	detached := time.Now()
	msg := handoverMsg{Type: msgGo, Update: r.report.Update, Lease: lease, Resume: resume}
	if r.journal != nil {
		msg.Degraded, msg.Snapshot = r.journal.entry.Degraded, r.journal.entry.Snapshot
	}
	if authoritative {
		final, err := takeCut(ctx, o.stateSources())
		if err != nil {
			return err
		}
		sent, err := sendCut(child.wire, final, bulk, hello.Deltas)
		final.release()
		if err != nil {
			return fmt.Errorf("updraft: self-update: final state: %w", err)
		}
		if err := o.sendExports(ctx, child.wire, o.localRemoteStates()); err != nil {
			return err
		}
		r.report.Flags = append(r.report.Flags, fmt.Sprintf("self-update: final state %d bytes, captured in a pause of %v", sent, final.pause))
	} else {
		msg.Restore = true
	}
	if resume {
		// The new process finishes the update: what this one did of it is
		// journaled, and the lock is free for it.
		if err := r.journal.write(ctx, func(e *journalEntry) {
			e.Done = appendOnce(e.Done, PhaseRollback, PhaseRestore)
		}); err != nil {
			return err
		}
		r.releaseLock()
	}
	sentAt := time.Now()
	if err := child.wire.send(msg); err != nil {
		return err
	}
	if _, err := child.expect(msgLive); err != nil {
		return fmt.Errorf("updraft: self-update: the new process did not go live: %w", err)
	}
	live := time.Now()
	r.report.Flags = append(r.report.Flags, fmt.Sprintf("self-update: switch pause %v: draining %v, detaching the lease %v, final state %v, the new process going live %v",
		live.Sub(pauseStart).Round(time.Microsecond), drained.Sub(pauseStart).Round(time.Microsecond), detached.Sub(drained).Round(time.Microsecond),
		sentAt.Sub(detached).Round(time.Microsecond), live.Sub(sentAt).Round(time.Microsecond)))
	s.mu.Lock()
	s.childLive = true
	s.mu.Unlock()
	o.at("selfupdate:live")
	return nil
}

// Rollback gives the data plane back to the previous version. In the old
// process (the usual case) the new one hands the state back and stops, and
// this process serves again. In a new process whose old one is gone, it
// hands over to the previous executable (RollbackPath), which finishes the
// update. In a process started afresh there is no previous process to
// return to: the state comes back from the snapshot, and the report says
// which executable serves.
func (s *SelfUpdate) Rollback(ctx context.Context) error {
	o, err := s.orchestrator()
	if err != nil {
		return err
	}
	s.mu.Lock()
	inherited, child := s.inherited != nil, s.child
	s.mu.Unlock()
	switch {
	case child != nil:
		return s.takeBack(ctx, o)
	case inherited:
		if s.opts.RollbackPath == "" {
			return errors.New("updraft: self-update: no previous executable to roll back to (set SelfUpdateOptions.RollbackPath)")
		}
		prev := s.inherited.Previous
		prev.Path = s.opts.RollbackPath
		if err := s.handTo(ctx, o, prev, true); err != nil {
			return err
		}
		o.current.handedOver = true
		s.mu.Lock()
		s.handed = true
		s.mu.Unlock()
		s.finish()
		return ErrHandedOver
	}
	if o.current != nil {
		o.current.report.Flags = append(o.current.report.Flags, fmt.Sprintf("self-update: this process (%s) was started afresh; it serves as the version it is, on the state restored from the snapshot", s.self.Path))
	}
	return nil
}

// takeBack ends a hand-over this process started: a live new process hands
// the state and the lease back and stops; one that is not live is stopped.
// This process then serves again.
func (s *SelfUpdate) takeBack(ctx context.Context, o *Orchestrator) error {
	s.mu.Lock()
	child, live := s.child, s.childLive
	s.child, s.childLive = nil, false
	s.mu.Unlock()
	if child == nil {
		s.serve(true)
		return nil
	}
	errs := multiError()
	if live {
		errs = multiError(s.receiveBack(ctx, o, child))
	} else {
		_ = child.wire.send(handoverMsg{Type: msgError, Err: "the update is rolled back before the new process went live"})
	}
	errs = multiError(errs, child.stop(s.opts.ReadyTimeout))
	if lease := o.journaledLease(); lease != nil && !o.holdsLease(lease.ID) {
		errs = multiError(errs, o.reattachLease(ctx, lease))
	}
	s.serve(true)
	return flatten(errs)
}

// receiveBack asks a live new process for the state back and applies it.
func (s *SelfUpdate) receiveBack(ctx context.Context, o *Orchestrator, child *childProc) error {
	if err := child.wire.send(handoverMsg{Type: msgRollback}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout+s.opts.DrainTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = child.wire.Close() })
	defer stop()
	m, err := o.receiveUntil(ctx, child.wire)
	switch {
	case errors.Is(err, errPeerGone):
		if o.current != nil {
			o.current.report.Flags = append(o.current.report.Flags, "self-update: the new process died before handing the state back: what it changed while it served is lost; this process serves on the state it had at the switch")
		}
		return nil
	case err != nil:
		return fmt.Errorf("updraft: self-update: taking the state back: %w", err)
	case m.Type != msgReturned:
		return fmt.Errorf("updraft: self-update: taking the state back: got %q, want %q", m.Type, msgReturned)
	}
	return nil
}

// keptState reports whether this process's state is authoritative, so that
// a roll-back needs no restore from the snapshot: true in the process that
// served until the switch, and in a process that received the state.
func (s *SelfUpdate) keptState() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authoritative
}

// handOver commits a validated self-update by handing it to the new
// process, which finishes it with Resume. It reports false when there is
// no live new process to hand to.
func (s *SelfUpdate) handOver(ctx context.Context, r *run) (bool, error) {
	s.mu.Lock()
	child, live := s.child, s.childLive
	s.mu.Unlock()
	if child == nil || !live {
		return false, nil
	}
	r.releaseLock()
	if err := child.wire.send(handoverMsg{Type: msgCommit}); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = child.wire.Close() })
	defer stop()
	if _, err := child.expect(msgAck); err != nil {
		return false, fmt.Errorf("updraft: self-update: the new process did not take the update over: %w", err)
	}
	s.mu.Lock()
	s.child, s.handed, s.authoritative = nil, true, false
	s.mu.Unlock()
	child.release()
	r.handedOver = true
	r.report.Flags = append(r.report.Flags, fmt.Sprintf("self-update: handed over to pid %d, which finishes the update (returns the migrated functions, undoes the partition, ends the degraded modes)", child.pid()))
	s.finish()
	return true, nil
}

// takeOver is Start in a process a self-update started: receive the
// state, go live when told, then follow the old process's verdict.
func (s *SelfUpdate) takeOver(ctx context.Context) error {
	o := s.orch
	w := s.control
	if err := w.send(handoverMsg{Type: msgHello, PID: os.Getpid(), Deltas: o.deltaSources()}); err != nil {
		return err
	}
	// Streams of state, then a message: "bulk" (answered once the bulk
	// is applied, so the switch need not wait for it), then "go".
	var m *handoverMsg
	for {
		var err error
		if m, err = o.receiveUntil(ctx, w); err != nil {
			if errors.Is(err, errPeerGone) {
				// The old process died before the switch: this one finishes.
				go s.resumeAlone(context.WithoutCancel(ctx))
				return fmt.Errorf("updraft: self-update: the old process died before handing over; finishing the update with Resume: %w", err)
			}
			s.finish()
			return err
		}
		if m.Type != msgBulk {
			break
		}
		if err := w.send(handoverMsg{Type: msgRestored, PID: os.Getpid()}); err != nil {
			s.finish()
			return err
		}
	}
	if m.Type != msgGo {
		s.finish()
		return fmt.Errorf("updraft: self-update: got %q, want %q", m.Type, msgGo)
	}
	if err := s.goLive(ctx, o, m); err != nil {
		_ = w.send(handoverMsg{Type: msgError, Err: err.Error()})
		s.finish()
		return err
	}
	if err := w.send(handoverMsg{Type: msgLive, PID: os.Getpid()}); err != nil {
		return err
	}
	if m.Resume {
		go s.resumeAlone(context.WithoutCancel(ctx))
		return nil
	}
	go s.follow(context.WithoutCancel(ctx), o, w)
	return nil
}

// goLive takes over what the go message hands down and opens the gates.
func (s *SelfUpdate) goLive(ctx context.Context, o *Orchestrator, m *handoverMsg) error {
	if m.Restore && o.snap != nil && m.Snapshot != "" {
		if err := o.snap.Restore(ctx, snapshot.Manifest{ID: m.Snapshot}); err != nil {
			return fmt.Errorf("updraft: self-update: restore snapshot %s: %w", m.Snapshot, err)
		}
	}
	if m.Lease != nil {
		if err := o.reattachLease(ctx, m.Lease); err != nil {
			return err
		}
	}
	for _, d := range m.Degraded {
		policy := degrade.Policy{Mode: d.Mode}
		if f := o.byName[d.Function]; f != nil && f.Degrade != nil && f.Degrade.Mode == d.Mode {
			policy = *f.Degrade
		}
		if !d.Until.After(o.opts.Clock()) {
			continue // the window is over
		}
		if err := guard("Degrader.Set", func() error {
			return o.degrader.Set(d.Function, policy, "reduced while the data plane is updated (handed over)", d.Until)
		}); err != nil {
			return fmt.Errorf("updraft: self-update: degrade %q: %w", d.Function, err)
		}
	}
	base, err := takeCut(ctx, o.stateSources())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.base, s.authoritative = base, true
	s.mu.Unlock()
	s.serve(true)
	return nil
}

// follow waits for the old process's verdict.
func (s *SelfUpdate) follow(ctx context.Context, o *Orchestrator, w *wire) {
	m, _, err := w.next()
	switch {
	case err != nil:
		// The old process died while validating this one.
		s.logger.Warn("updraft: self-update: the old process is gone before its verdict; finishing the update with Resume", "err", err)
		s.resumeAlone(ctx)
	case m.Type == msgCommit:
		if err := w.send(handoverMsg{Type: msgAck, PID: os.Getpid()}); err != nil {
			s.logger.Warn("updraft: self-update: ack", "err", err)
		}
		s.releaseBase()
		s.resumeAlone(ctx)
	case m.Type == msgRollback:
		if err := s.giveBack(ctx, o, w); err != nil {
			s.logger.Error("updraft: self-update: giving the state back failed", "err", err)
			_ = w.send(handoverMsg{Type: msgError, Err: err.Error()})
		}
		_ = w.Close()
		s.finish()
	default:
		s.logger.Error("updraft: self-update: unexpected message from the old process", "type", m.Type)
		s.resumeAlone(ctx)
	}
}

// giveBack drains this process and hands the state and the lease back.
func (s *SelfUpdate) giveBack(ctx context.Context, o *Orchestrator, w *wire) error {
	if err := s.drain(ctx); err != nil {
		return err
	}
	if _, err := o.detachLease(ctx); err != nil {
		return err
	}
	final, err := takeCut(ctx, o.stateSources())
	if err != nil {
		return err
	}
	defer final.release()
	s.mu.Lock()
	base := s.base
	s.mu.Unlock()
	defer s.releaseBase()
	if _, err := sendCut(w, final, base, o.deltaSources()); err != nil {
		return err
	}
	if err := o.sendExports(ctx, w, o.localRemoteStates()); err != nil {
		return err
	}
	s.mu.Lock()
	s.authoritative = false
	s.mu.Unlock()
	return w.send(handoverMsg{Type: msgReturned})
}

// resumeAlone finishes the update with Resume, retrying while the lock is
// still held by the process this one took over from.
func (s *SelfUpdate) resumeAlone(ctx context.Context) {
	o := s.orch
	var report *Report
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		report, err = o.Resume(ctx, s)
		if !errors.Is(err, ErrUpdateInProgress) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil && !errors.Is(err, ErrHandedOver) {
		s.logger.Error("updraft: self-update: Resume", "err", err)
	}
	s.mu.Lock()
	s.report = report
	s.mu.Unlock()
}

func (s *SelfUpdate) releaseBase() {
	s.mu.Lock()
	base := s.base
	s.base = nil
	s.mu.Unlock()
	base.release()
}

// appendOnce adds each phase not yet in done.
func appendOnce(done []Phase, phases ...Phase) []Phase {
	for _, p := range phases {
		found := false
		for _, d := range done {
			found = found || d == p
		}
		if !found {
			done = append(done, p)
		}
	}
	return done
}
